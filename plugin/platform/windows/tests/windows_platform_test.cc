// The Windows backend's own promises: who may open the pipe, what a peer can
// and cannot make us do with handle values, the section's size check, event
// doorbells with the pipe as liveness, the event set and the timer. The
// cross-process behaviour is in plugin/ipc/tests/cross_process_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plugin/platform/platform.h"
#include "plugin/platform/windows/windows_internal.h"
// After windows.h.
#include <aclapi.h>
#include <sddl.h>

namespace grpc_shm {
namespace platform {
namespace {

std::string UniquePipe(const char* tag) {
  static int counter = 0;
  return "pipe:gshm-wtest-" + std::string(tag) + "-" + std::to_string(::GetCurrentProcessId()) +
         "-" + std::to_string(counter++);
}

// A connected pair in this process: the server end, the client end.
struct PipePair {
  explicit PipePair(const std::string& address) {
    Status s = ListenLocal(address, 8, &listener);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = ConnectLocal(address, 5000, &client);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(WaitReadable(listener.get(), 5000).ok());
    s = AcceptLocal(listener.get(), &server);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  UniqueHandle listener, server, client;
};

std::string OwnSid() {
  HANDLE token = nullptr;
  EXPECT_TRUE(::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token));
  alignas(TOKEN_USER) char buf[256];
  DWORD len = 0;
  EXPECT_TRUE(::GetTokenInformation(token, TokenUser, buf, sizeof(buf), &len));
  ::CloseHandle(token);
  char* text = nullptr;
  EXPECT_TRUE(::ConvertSidToStringSidA(reinterpret_cast<TOKEN_USER*>(buf)->User.Sid, &text));
  std::string sid = text;
  ::LocalFree(text);
  return sid;
}

TEST(WindowsPipeTest, DaclAdmitsOnlyTheServersOwnUser) {
  const std::string address = UniquePipe("dacl");
  PipePair pair(address);
  const std::wstring path = L"\\\\.\\pipe\\" + std::wstring(address.begin() + 5, address.end());
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  ASSERT_EQ(::GetNamedSecurityInfoW(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                                    nullptr, nullptr, &dacl, nullptr, &sd),
            static_cast<DWORD>(ERROR_SUCCESS));
  ASSERT_NE(dacl, nullptr);
  ASSERT_EQ(dacl->AceCount, 1);
  void* ace = nullptr;
  ASSERT_TRUE(::GetAce(dacl, 0, &ace));
  auto* allowed = static_cast<ACCESS_ALLOWED_ACE*>(ace);
  EXPECT_EQ(allowed->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
  char* text = nullptr;
  ASSERT_TRUE(::ConvertSidToStringSidA(&allowed->SidStart, &text));
  EXPECT_EQ(std::string(text), OwnSid());
  ::LocalFree(text);
  ::LocalFree(sd);
}

// The ACEs of the pipe `address`'s DACL, in order: SID string, access mask.
std::vector<std::pair<std::string, ACCESS_MASK>> PipeAces(const std::string& address) {
  std::vector<std::pair<std::string, ACCESS_MASK>> aces;
  const std::wstring path = L"\\\\.\\pipe\\" + std::wstring(address.begin() + 5, address.end());
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  EXPECT_EQ(::GetNamedSecurityInfoW(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                                    nullptr, nullptr, &dacl, nullptr, &sd),
            static_cast<DWORD>(ERROR_SUCCESS));
  if (dacl == nullptr) return aces;
  for (DWORD i = 0; i < dacl->AceCount; ++i) {
    void* ace = nullptr;
    EXPECT_TRUE(::GetAce(dacl, i, &ace));
    auto* allowed = static_cast<ACCESS_ALLOWED_ACE*>(ace);
    EXPECT_EQ(allowed->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    char* text = nullptr;
    EXPECT_TRUE(::ConvertSidToStringSidA(&allowed->SidStart, &text));
    aces.emplace_back(text, allowed->Mask);
    ::LocalFree(text);
  }
  ::LocalFree(sd);
  return aces;
}

TEST(WindowsPipeTest, AllowListAddsEachSidWithClientRightsOnly) {
  const std::string address = UniquePipe("allow");
  const std::string users = "S-1-5-32-545";  // BUILTIN\Users
  const std::string other = "S-1-5-21-1-2-3-1001";
  UniqueHandle listener;
  // The server's own SID is already there; "BU" is Users' SDDL alias.
  const Status s = ListenLocal(address, 8, {users, other, OwnSid(), "BU"}, &listener, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Clients (here, the server's own user) still get in now that they open
  // the pipe with kClientAccess. Connected before the DACL is read, as in
  // DaclAdmitsOnlyTheServersOwnUser: under wine, reading it first left the
  // client waiting for a free instance (not understood).
  UniqueHandle client_end, server_end;
  const Status c = ConnectLocal(address, 5000, &client_end);
  ASSERT_TRUE(c.ok()) << c.ToString();
  ASSERT_TRUE(WaitReadable(listener.get(), 5000).ok());
  ASSERT_TRUE(AcceptLocal(listener.get(), &server_end).ok());
  const auto aces = PipeAces(address);
  ASSERT_EQ(aces.size(), 3u);
  EXPECT_EQ(aces[0].first, OwnSid());
  EXPECT_EQ(aces[1].first, users);
  EXPECT_EQ(aces[2].first, other);
  // Read, write data, set the pipe's mode; never create instances of the
  // pipe or change its DACL.
  const ACCESS_MASK client = FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES;
  for (size_t i = 1; i < aces.size(); ++i) {
    EXPECT_EQ(aces[i].second, client) << aces[i].first;
    EXPECT_EQ(aces[i].second & FILE_CREATE_PIPE_INSTANCE, 0u) << aces[i].first;
    EXPECT_EQ(aces[i].second & (WRITE_DAC | WRITE_OWNER), 0u) << aces[i].first;
  }
}

TEST(WindowsPipeTest, MalformedSidInAllowListFailsAndCreatesNoPipe) {
  for (const std::string& bad : std::vector<std::string>{
           "S-1-banana", "", "alice", "S-1-5-32-545)(A;;GA;;;WD", "S-1-5-32-545;"}) {
    const std::string address = UniquePipe("badsid");
    UniqueHandle listener;
    const Status s = ListenLocal(address, 8, {"S-1-5-32-545", bad}, &listener, nullptr);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "'" << bad << "': " << s.ToString();
    EXPECT_NE(s.message().find("malformed SID '" + bad + "'"), std::string::npos) << s.ToString();
    EXPECT_FALSE(listener.valid());
    UniqueHandle client_end;
    EXPECT_FALSE(ConnectLocal(address, 100, &client_end).ok()) << "a pipe exists for " << bad;
  }
}

TEST(WindowsPipeTest, SecondServerOnALiveNameIsRefused) {
  const std::string address = UniquePipe("twice");
  UniqueHandle first, second;
  ASSERT_TRUE(ListenLocal(address, 8, &first).ok());
  const Status s = ListenLocal(address, 8, &second);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("address in use"), std::string::npos) << s.ToString();
  // Once the first server is gone the name is free again: nothing stale.
  first.reset();
  EXPECT_TRUE(ListenLocal(address, 8, &second).ok());
}

TEST(WindowsPipeTest, AddressesThatAreNotPipeNamesAreRejected) {
  UniqueHandle h;
  for (const std::string& bad : std::vector<std::string>{
           "/tmp/x.sock", "@abstract", "pipe:", "pipe:a\\b", "pipe:" + std::string(300, 'n')}) {
    const Status s = ListenLocal(bad, 8, &h);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(WindowsPipeTest, ConnectToMissingPipeFailsNamingIt) {
  UniqueHandle h;
  const std::string address = UniquePipe("missing");
  const Status s = ConnectLocal(address, 1000, &h);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(address), std::string::npos) << s.ToString();
}

TEST(WindowsPipeTest, BothEndsIdentifyTheOtherProcessAndItsUser) {
  PipePair pair(UniquePipe("creds"));
  PeerCredentials server_view, client_view;
  ASSERT_TRUE(GetPeerCredentials(pair.server.get(), &server_view).ok());
  ASSERT_TRUE(GetPeerCredentials(pair.client.get(), &client_view).ok());
  EXPECT_EQ(server_view.pid, static_cast<pid_t>(::GetCurrentProcessId()));
  EXPECT_EQ(client_view.pid, static_cast<pid_t>(::GetCurrentProcessId()));
  EXPECT_EQ(server_view.user_sid, OwnSid());
  EXPECT_EQ(client_view.user_sid, OwnSid());
}

TEST(WindowsPipeTest, HandlesTravelAsNewHandlesOfTheReceiver) {
  PipePair pair(UniquePipe("handles"));
  UniqueHandle event(FromHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr)));
  const uint32_t payload = 42;
  ASSERT_TRUE(SendMessage(pair.server.get(), &payload, sizeof(payload), {event.get()}, 1000).ok());
  uint32_t got = 0;
  std::vector<UniqueHandle> handles;
  ASSERT_TRUE(ReceiveMessage(pair.client.get(), &got, sizeof(got), 1, &handles, 5000).ok());
  EXPECT_EQ(got, 42u);
  ASSERT_EQ(handles.size(), 1u);
  EXPECT_NE(handles[0].get(), event.get());
  // The same event: setting ours shows on theirs.
  ::SetEvent(AsHandle(event.get()));
  EXPECT_EQ(::WaitForSingleObject(AsHandle(handles[0].get()), 0), WAIT_OBJECT_0);
}

TEST(WindowsPipeTest, ClientEndCannotPushHandles) {
  PipePair pair(UniquePipe("push"));
  UniqueHandle event(FromHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr)));
  const uint32_t payload = 1;
  EXPECT_EQ(SendMessage(pair.client.get(), &payload, sizeof(payload), {event.get()}, 1000).code(),
            StatusCode::kInvalidArgument);
}

// A raw message as a hostile peer would write it: header, handle values, payload.
std::string RawMessage(const std::vector<uint64_t>& values, uint32_t payload) {
  const uint32_t header[2] = {0x57485347, static_cast<uint32_t>(values.size())};
  std::string m(reinterpret_cast<const char*>(header), sizeof(header));
  m.append(reinterpret_cast<const char*>(values.data()), 8 * values.size());
  m.append(reinterpret_cast<const char*>(&payload), sizeof(payload));
  return m;
}

// Writes raw bytes on the client end, bypassing SendMessage's framing: the
// platform would frame them again, so go through the kernel pipe directly.
void WriteRaw(const std::string& address, UniqueHandle* server, UniqueHandle* listener,
              const std::string& bytes, HANDLE* raw_client) {
  ASSERT_TRUE(ListenLocal(address, 8, listener).ok());
  const std::wstring path = L"\\\\.\\pipe\\" + std::wstring(address.begin() + 5, address.end());
  *raw_client = ::CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                              0, nullptr);
  ASSERT_NE(*raw_client, INVALID_HANDLE_VALUE);
  DWORD n = 0;
  ASSERT_TRUE(
      ::WriteFile(*raw_client, bytes.data(), static_cast<DWORD>(bytes.size()), &n, nullptr));
  ASSERT_TRUE(WaitReadable(listener->get(), 5000).ok());
  ASSERT_TRUE(AcceptLocal(listener->get(), server).ok());
}

TEST(WindowsPipeTest, SurplusHandleValuesAreRefusedAndNotClosed) {
  // The values name a handle of ours: refusing must not close it.
  UniqueHandle ours(FromHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr)));
  UniqueHandle listener, server;
  HANDLE raw = nullptr;
  ASSERT_NO_FATAL_FAILURE(WriteRaw(UniquePipe("surplus"), &server, &listener,
                                   RawMessage({uint64_t(ours.get()), uint64_t(ours.get())}, 5),
                                   &raw));
  uint32_t got = 0;
  std::vector<UniqueHandle> handles;
  EXPECT_EQ(ReceiveMessage(server.get(), &got, sizeof(got), 0, &handles, 5000).code(),
            StatusCode::kProtocol);
  EXPECT_TRUE(handles.empty());
  DWORD flags = 0;
  EXPECT_TRUE(::GetHandleInformation(AsHandle(ours.get()), &flags));
  ::CloseHandle(raw);
}

TEST(WindowsPipeTest, ValuesThatAreNotSectionsOrEventsOfOursAreRefusedAndNotClosed) {
  // A handle of ours of a kind the protocol never carries (a process).
  HANDLE process = nullptr;
  ASSERT_TRUE(::DuplicateHandle(::GetCurrentProcess(), ::GetCurrentProcess(), ::GetCurrentProcess(),
                                &process, 0, FALSE, DUPLICATE_SAME_ACCESS));
  UniqueHandle ours(FromHandle(process));
  for (int variant = 0; variant < 3; ++variant) {
    UniqueHandle listener, server;
    HANDLE raw = nullptr;
    // 0x7ffffff0: no process has that many handles open.
    const uint64_t bogus = variant == 0   ? 0x7ffffff0ull
                           : variant == 1 ? 0
                                          : static_cast<uint64_t>(ours.get());
    ASSERT_NO_FATAL_FAILURE(
        WriteRaw(UniquePipe("bogus"), &server, &listener, RawMessage({bogus}, 5), &raw));
    uint32_t got = 0;
    std::vector<UniqueHandle> handles;
    EXPECT_EQ(ReceiveMessage(server.get(), &got, sizeof(got), 1, &handles, 5000).code(),
              StatusCode::kProtocol);
    EXPECT_TRUE(handles.empty());
    ::CloseHandle(raw);
  }
  DWORD flags = 0;
  EXPECT_TRUE(::GetHandleInformation(AsHandle(ours.get()), &flags));
}

TEST(WindowsPipeTest, BytesAfterTheHandshakeCountAsAHangUp) {
  PipePair pair(UniquePipe("bytes"));
  EXPECT_TRUE(CheckAlive(pair.server.get()).ok());
  ASSERT_TRUE(SendMessage(pair.client.get(), "x", 1, {}, 1000).ok());
  EXPECT_EQ(WaitForHangup(pair.server.get(), 5000).code(), StatusCode::kPeerClosed);
}

TEST(WindowsPipeTest, ShutdownIsSeenByThePeerAsHangUp) {
  PipePair pair(UniquePipe("shutdown"));
  EXPECT_EQ(WaitForHangup(pair.client.get(), 0).code(), StatusCode::kTimeout);
  ShutdownLocal(pair.server.get());
  EXPECT_EQ(WaitForHangup(pair.client.get(), 5000).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(CheckAlive(pair.client.get()).code(), StatusCode::kPeerClosed);
}

bool Inheritable(NativeHandle h) {
  DWORD flags = 0;
  EXPECT_TRUE(::GetHandleInformation(AsHandle(h), &flags));
  return (flags & HANDLE_FLAG_INHERIT) != 0;
}

// The Windows counterpart of close-on-exec (cloexec_test on POSIX): no
// handle the backend creates or receives leaks into processes we start.
TEST(WindowsHandlesTest, NoHandleOfTheBackendIsInheritable) {
  UniqueHandle section, dup;
  MappedRegion mapping;
  ASSERT_TRUE(CreateSharedMemory(SharedMemoryKind::kSection, 4096, &section, &mapping).ok());
  DoorbellHandles bell;
  ASSERT_TRUE(CreateDoorbell(DoorbellKind::kEvent, &bell).ok());
  ASSERT_TRUE(DuplicateHandle(section.get(), &dup).ok());
  PipePair pair(UniquePipe("inherit"));
  const uint32_t payload = 1;
  ASSERT_TRUE(
      SendMessage(pair.server.get(), &payload, sizeof(payload), {section.get()}, 1000).ok());
  uint32_t got = 0;
  std::vector<UniqueHandle> received;
  ASSERT_TRUE(ReceiveMessage(pair.client.get(), &got, sizeof(got), 1, &received, 5000).ok());
  ASSERT_EQ(received.size(), 1u);
  UniqueHandle timer, reserve;
  ASSERT_TRUE(CreateTimer(&timer).ok());
  ASSERT_TRUE(OpenReserveHandle(&reserve).ok());
  for (NativeHandle h : {section.get(), dup.get(), bell.wait.get(), bell.ring.get(),
                         received[0].get(), timer.get(), reserve.get()}) {
    EXPECT_FALSE(Inheritable(h)) << h;
  }
}

TEST(WindowsSectionTest, MappingMoreThanTheSectionHoldsFails) {
  UniqueHandle section;
  MappedRegion mapping;
  ASSERT_TRUE(CreateSharedMemory(SharedMemoryKind::kSection, 1 << 16, &section, &mapping).ok());
  mapping.data()[0] = 7;
  MappedRegion same, bigger;
  ASSERT_TRUE(MapSharedMemory(SharedMemoryKind::kSection, section.get(), 1 << 16, &same).ok());
  EXPECT_EQ(same.data()[0], 7);
  EXPECT_FALSE(MapSharedMemory(SharedMemoryKind::kSection, section.get(), 1 << 20, &bigger).ok());
  EXPECT_FALSE(IsSupported(SharedMemoryKind::kMemfd));
  EXPECT_FALSE(IsSupported(SharedMemoryKind::kPosixShm));
}

TEST(WindowsDoorbellTest, RingWakesWaiterAndDrainClearsIt) {
  DoorbellHandles bell;
  ASSERT_TRUE(CreateDoorbell(DoorbellKind::kEvent, &bell).ok());
  auto receiver = MakeWakeReceiver(DoorbellKind::kEvent, std::move(bell.wait));
  auto sender = MakeWakeSender(DoorbellKind::kEvent, std::move(bell.ring));
  EXPECT_EQ(receiver->Wait(nullptr, 0, kInvalidHandle, 0).code(), StatusCode::kTimeout);
  std::thread ringer([&] { sender->Ring(nullptr); });
  EXPECT_TRUE(receiver->Wait(nullptr, 0, kInvalidHandle, 10000).ok());
  ringer.join();
  receiver->Drain();
  EXPECT_EQ(receiver->Wait(nullptr, 0, kInvalidHandle, 0).code(), StatusCode::kTimeout);
}

TEST(WindowsDoorbellTest, WaiterSeesThePeerHangUpOnTheLivenessPipe) {
  PipePair pair(UniquePipe("liveness"));
  DoorbellHandles bell;
  ASSERT_TRUE(CreateDoorbell(DoorbellKind::kEvent, &bell).ok());
  auto receiver = MakeWakeReceiver(DoorbellKind::kEvent, std::move(bell.wait));
  std::thread closer([&] { pair.client.reset(); });
  EXPECT_EQ(receiver->Wait(nullptr, 0, pair.server.get(), 10000).code(), StatusCode::kPeerClosed);
  closer.join();
}

TEST(WindowsEventSetTest, ReportsReadyHandlesWithTheirTagsAndWakes) {
  std::unique_ptr<EventSet> set;
  ASSERT_TRUE(CreateEventSet(&set).ok());
  DoorbellHandles bell;
  ASSERT_TRUE(CreateDoorbell(DoorbellKind::kEvent, &bell).ok());
  PipePair pair(UniquePipe("set"));
  int bell_tag = 0, pipe_tag = 0;
  ASSERT_TRUE(set->Add(bell.wait.get(), EventSet::kReadable, &bell_tag).ok());
  ASSERT_TRUE(set->Add(pair.server.get(), EventSet::kHangup, &pipe_tag).ok());
  EventSet::Event events[4];
  int n = -1;
  ASSERT_TRUE(set->Wait(0, events, 4, &n).ok());
  EXPECT_EQ(n, 0);

  ::SetEvent(AsHandle(bell.ring.get()));
  pair.client.reset();
  bool saw_bell = false, saw_pipe = false;
  while (!(saw_bell && saw_pipe)) {
    ASSERT_TRUE(set->Wait(10000, events, 4, &n).ok());
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; ++i) {
      saw_bell |= events[i].tag == &bell_tag;
      saw_pipe |= events[i].tag == &pipe_tag;
    }
  }
  set->Remove(bell.wait.get());
  set->Remove(pair.server.get());
  std::thread waker([&] { set->Wake(); });
  ASSERT_TRUE(set->Wait(10000, events, 4, &n).ok());
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].tag, nullptr);
  waker.join();
}

TEST(WindowsEventSetTest, RemoveFromAnotherThreadReturnsOnceTheWaitLetGo) {
  std::unique_ptr<EventSet> set;
  ASSERT_TRUE(CreateEventSet(&set).ok());
  UniqueHandle event(FromHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr)));
  int tag = 0;
  ASSERT_TRUE(set->Add(event.get(), EventSet::kReadable, &tag).ok());
  std::thread waiter([&] {
    EventSet::Event events[2];
    int n = 0;
    EXPECT_TRUE(set->Wait(-1, events, 2, &n).ok());  // ends with the Wake below
  });
  set->Remove(event.get());
  event.reset();  // safe now: no Wait holds it
  set->Wake();
  waiter.join();
}

TEST(WindowsTimerTest, ArmedTimerBecomesReady) {
  UniqueHandle timer;
  ASSERT_TRUE(CreateTimer(&timer).ok());
  EXPECT_EQ(::WaitForSingleObject(AsHandle(timer.get()), 0), static_cast<DWORD>(WAIT_TIMEOUT));
  ASSERT_TRUE(ArmTimer(timer.get(), std::chrono::milliseconds(1)).ok());
  EXPECT_EQ(::WaitForSingleObject(AsHandle(timer.get()), 10000), WAIT_OBJECT_0);
}

}  // namespace
}  // namespace platform
}  // namespace grpc_shm
