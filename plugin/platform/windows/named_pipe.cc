// The local "socket" on Windows: a named pipe, \\.\pipe\NAME for the address
// "pipe:NAME".
//
// - The server's pipe admits only its own user (a DACL with one ACE for the
//   SID of the server process's user), plus the users or groups of its
//   allow-list with just the rights a client needs (kClientAccess: not the
//   right to create instances of the pipe or change its DACL), and no
//   remote clients; the first
//   instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so a server never
//   joins instances someone else created under the same name.
// - Clients open the pipe at SECURITY_IDENTIFICATION, so a server squatting
//   on the name can learn who they are but not act as them.
// - Handles travel "pushed": the server duplicates them into the client
//   process (found with GetNamedPipeClientProcessId) and sends their values
//   in the message. Every message on the pipe is
//     uint32 magic, uint32 handle count, uint64 handle values[count], payload.
// - A pipe end keeps one overlapped read in flight; its event is what waiters
//   wait on. The read completes when bytes arrive or the peer's end closes
//   (the peer hung up, or its process died and the kernel closed its
//   handles): that is the liveness signal.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "plugin/platform/windows/windows_internal.h"
// After windows.h, which they need.
#include <sddl.h>
#include <winternl.h>

namespace grpc_shm {
namespace platform {
namespace {

constexpr char kAddressPrefix[] = "pipe:";
constexpr size_t kMaxPipeName = 200;  // \\.\pipe\ + name stays below 256 characters
constexpr DWORD kPipeBufferBytes = 64 * 1024;
constexpr uint32_t kMessageMagic = 0x57485347;  // "GSHW"
constexpr uint32_t kMaxHandlesPerMessage = 8;
// What a client opens the pipe with, and all that the allow-list's SIDs are
// granted: read, write data, and set the pipe's mode. Not GENERIC_WRITE,
// which includes FILE_APPEND_DATA, on a pipe FILE_CREATE_PIPE_INSTANCE: with
// it an admitted client could add instances under the server's name and
// answer other clients.
constexpr DWORD kClientAccess = FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES;

struct MessageHeader {
  uint32_t magic;
  uint32_t num_handles;
};
static_assert(sizeof(MessageHeader) == 8, "wire format");

Status Invalid(const std::string& address, const std::string& why) {
  return Status(StatusCode::kInvalidArgument,
                "invalid address '" + address + "': " + why + " (Windows expects pipe:NAME)");
}

Status PipePath(const std::string& address, std::wstring* path) {
  if (address.compare(0, sizeof(kAddressPrefix) - 1, kAddressPrefix) != 0) {
    return Invalid(address, "not a pipe address");
  }
  const std::string name = address.substr(sizeof(kAddressPrefix) - 1);
  if (name.empty()) return Invalid(address, "empty pipe name");
  if (name.size() > kMaxPipeName) {
    return Invalid(address, "pipe name longer than " + std::to_string(kMaxPipeName) + " bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == '\\') return Invalid(address, "control character or backslash in name");
  }
  const int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name.data(),
                                      static_cast<int>(name.size()), nullptr, 0);
  if (n <= 0) return Invalid(address, "pipe name is not UTF-8");
  std::wstring wide(static_cast<size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, 0, name.data(), static_cast<int>(name.size()), &wide[0], n);
  *path = L"\\\\.\\pipe\\" + wide;
  return Status::Ok();
}

bool IsHangupError(DWORD err) {
  return err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA || err == ERROR_PIPE_NOT_CONNECTED ||
         err == ERROR_OPERATION_ABORTED || err == ERROR_INVALID_HANDLE;
}

// The user of a process, as a SID string, from its token.
Status ProcessUserSid(HANDLE process, std::string* sid) {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(process, TOKEN_QUERY, &token)) {
    return WindowsErrorStatus("OpenProcessToken");
  }
  alignas(TOKEN_USER) char buf[256];
  DWORD len = 0;
  const BOOL ok = ::GetTokenInformation(token, TokenUser, buf, sizeof(buf), &len);
  const DWORD err = ::GetLastError();
  ::CloseHandle(token);
  if (!ok) return WindowsErrorStatus("GetTokenInformation(TokenUser)", err);
  char* text = nullptr;
  if (!::ConvertSidToStringSidA(reinterpret_cast<TOKEN_USER*>(buf)->User.Sid, &text)) {
    return WindowsErrorStatus("ConvertSidToStringSid");
  }
  *sid = text;
  ::LocalFree(text);
  return Status::Ok();
}

// The pipe's DACL as SDDL: full access for the user running this process,
// kClientAccess for each SID of `allowed_sids`, nobody else. Each SID is
// parsed (ConvertStringSidToSid also takes SDDL aliases such as "BU") and
// written back in its canonical S-1-... form, so no text of the caller's
// reaches the SDDL: a malformed one is an error, never a different DACL.
Status PipeDaclSddl(const std::vector<std::string>& allowed_sids, std::string* sddl) {
  std::string own;
  Status s = ProcessUserSid(::GetCurrentProcess(), &own);
  if (!s.ok()) return s;
  char access[16];
  std::snprintf(access, sizeof(access), "0x%lx", static_cast<unsigned long>(kClientAccess));
  std::string out = "D:P(A;;GA;;;" + own + ")";
  std::vector<std::string> seen = {own};
  for (const std::string& text : allowed_sids) {
    PSID sid = nullptr;
    if (text.empty() || text.find_first_of("();:") != std::string::npos ||
        !::ConvertStringSidToSidA(text.c_str(), &sid)) {
      return Status(StatusCode::kInvalidArgument,
                    "malformed SID '" + text + "' in the pipe's allow-list (expected S-1-...)");
    }
    char* canonical = nullptr;
    const BOOL ok = ::ConvertSidToStringSidA(sid, &canonical);
    ::LocalFree(sid);
    if (!ok) return WindowsErrorStatus("ConvertSidToStringSid");
    const std::string sid_string = canonical;
    ::LocalFree(canonical);
    if (std::find(seen.begin(), seen.end(), sid_string) != seen.end()) continue;
    seen.push_back(sid_string);
    out += "(A;;" + std::string(access) + ";;;" + sid_string + ")";
  }
  *sddl = std::move(out);
  return Status::Ok();
}

// One end of a connected pipe. All state is guarded by mu_; a write waits
// without it (one writer at a time, as on a socket).
class PipeEnd final : public PipeObject {
 public:
  PipeEnd(HANDLE pipe, bool server_end)
      : pipe_(pipe),
        server_end_(server_end),
        read_event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)),
        write_event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {}
  ~PipeEnd() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      CloseLocked();
    }
    if (peer_process_ != nullptr) ::CloseHandle(peer_process_);
    ::CloseHandle(read_event_);
    ::CloseHandle(write_event_);
  }
  bool ok() const { return read_event_ != nullptr && write_event_ != nullptr; }

  HANDLE ReadyEvent() override {
    std::lock_guard<std::mutex> lock(mu_);
    Refresh();
    return read_event_;
  }
  bool is_pipe_end() const override { return true; }

  // Takes one whole message if it has arrived: kWouldBlock until then, so a
  // peer that sent half a message does not keep the event signalled.
  Status TakeMessage(void* data, size_t size, size_t max_handles, std::vector<uint64_t>* values) {
    std::lock_guard<std::mutex> lock(mu_);
    Harvest();
    if (in_.size() < sizeof(MessageHeader)) return NotYet(sizeof(MessageHeader));
    MessageHeader header;
    std::memcpy(&header, in_.data(), sizeof(header));
    if (header.magic != kMessageMagic) {
      return Status(StatusCode::kProtocol, "peer sent something that is not a grpc-shm message");
    }
    // Handles named by a refused message are not closed: they are only
    // numbers the peer wrote, and closing them could close handles of ours.
    if (header.num_handles > max_handles) {
      return Status(StatusCode::kProtocol, "peer sent " + std::to_string(header.num_handles) +
                                               " handles, at most " + std::to_string(max_handles) +
                                               " expected");
    }
    const size_t need = sizeof(header) + 8 * size_t{header.num_handles} + size;
    if (in_.size() < need) return NotYet(need);
    values->resize(header.num_handles);
    if (header.num_handles != 0) {
      std::memcpy(values->data(), in_.data() + sizeof(header), 8 * size_t{header.num_handles});
    }
    if (size != 0) std::memcpy(data, in_.data() + sizeof(header) + 8 * header.num_handles, size);
    in_.erase(0, need);
    want_ = 1;
    Refresh();
    return Status::Ok();
  }

  // kPeerClosed once the peer hung up or sent bytes nobody asked for.
  Status CheckAlive() {
    std::lock_guard<std::mutex> lock(mu_);
    Harvest();
    if (!in_.empty()) {
      return Status(StatusCode::kPeerClosed, "peer sent unexpected bytes on the liveness pipe");
    }
    if (broken_) return Status(StatusCode::kPeerClosed, "peer hung up");
    Refresh();
    return Status::Ok();
  }

  Status Write(const void* data, size_t size, Clock::time_point deadline) {
    HANDLE pipe;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pipe_ == INVALID_HANDLE_VALUE) return Status(StatusCode::kPeerClosed, "pipe closed");
      pipe = pipe_;
    }
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
      OVERLAPPED ov{};
      ov.hEvent = write_event_;
      const DWORD chunk = static_cast<DWORD>(std::min<size_t>(size - done, 1u << 20));
      if (!::WriteFile(pipe, p + done, chunk, nullptr, &ov)) {
        const DWORD err = ::GetLastError();
        if (err != ERROR_IO_PENDING) return WriteError(err);
        if (::WaitForSingleObject(write_event_, RemainingMs(deadline)) == WAIT_TIMEOUT) {
          ::CancelIoEx(pipe, &ov);
          DWORD ignored = 0;
          ::GetOverlappedResult(pipe, &ov, &ignored, TRUE);
          return Status(StatusCode::kTimeout, "timed out writing to the pipe");
        }
      }
      DWORD n = 0;
      if (!::GetOverlappedResult(pipe, &ov, &n, TRUE)) return WriteError(::GetLastError());
      done += n;
    }
    return Status::Ok();
  }

  // The peer process, opened on first use and kept, so that its pid cannot
  // be reused under us. The pid comes from the pipe; the pipe is checked
  // after the open, so the process we hold is the one at the other end.
  Status PeerProcess(HANDLE* process, DWORD* pid) {
    std::lock_guard<std::mutex> lock(mu_);
    if (peer_process_ == nullptr) {
      if (pipe_ == INVALID_HANDLE_VALUE) return Status(StatusCode::kPeerClosed, "pipe closed");
      ULONG id = 0;
      const BOOL ok = server_end_ ? ::GetNamedPipeClientProcessId(pipe_, &id)
                                  : ::GetNamedPipeServerProcessId(pipe_, &id);
      if (!ok) return WindowsErrorStatus("GetNamedPipe*ProcessId");
      // Only the server passes handles, so only it needs PROCESS_DUP_HANDLE
      // (which is as good as full control of the client).
      const DWORD access =
          PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | (server_end_ ? PROCESS_DUP_HANDLE : 0);
      HANDLE h = ::OpenProcess(access, FALSE, id);
      if (h == nullptr) return WindowsErrorStatus("OpenProcess of peer " + std::to_string(id));
      DWORD avail = 0;
      if (!::PeekNamedPipe(pipe_, nullptr, 0, nullptr, &avail, nullptr) &&
          IsHangupError(::GetLastError())) {
        ::CloseHandle(h);
        return Status(StatusCode::kPeerClosed, "peer hung up");
      }
      peer_process_ = h;
      peer_pid_ = id;
    }
    *process = peer_process_;
    *pid = peer_pid_;
    return Status::Ok();
  }

  // Opens the peer process while the pipe is surely connected, so that
  // credentials can still be read after a peer that hangs up right after
  // the handshake (as SO_PEERCRED can). A failure is retried on use.
  void LearnPeer() {
    HANDLE process;
    DWORD pid;
    (void)PeerProcess(&process, &pid);
  }

  bool server_end() const { return server_end_; }

  // Closes the pipe: the peer's next read or wait sees the hang-up. Data we
  // wrote before stays readable by the peer.
  void Hangup() {
    std::lock_guard<std::mutex> lock(mu_);
    CloseLocked();
  }

 private:
  static Status WriteError(DWORD err) {
    if (IsHangupError(err)) return Status(StatusCode::kPeerClosed, "peer hung up");
    return WindowsErrorStatus("WriteFile to the pipe", err);
  }

  Status NotYet(size_t need) {
    if (broken_) {
      return in_.empty()
                 ? Status(StatusCode::kPeerClosed, "peer hung up")
                 : Status(StatusCode::kPeerClosed, "peer hung up in the middle of a message");
    }
    want_ = need;
    Refresh();
    return Status::WouldBlock();
  }

  // The event is signalled iff the pipe broke or `want_` bytes are in; a
  // read is in flight otherwise. We read only while short of `want_`, so a
  // peer that floods the pipe fills its own buffer, not our memory.
  void Refresh() {
    for (;;) {
      Harvest();
      if (broken_ || in_.size() >= want_) {
        ::SetEvent(read_event_);
        return;
      }
      if (read_pending_) return;
      ::ResetEvent(read_event_);
      read_ov_ = OVERLAPPED{};
      read_ov_.hEvent = read_event_;
      if (!::ReadFile(pipe_, read_buf_, sizeof(read_buf_), nullptr, &read_ov_) &&
          ::GetLastError() != ERROR_IO_PENDING) {
        MarkBroken();
        continue;
      }
      read_pending_ = true;  // Harvest() takes a read that completed at once
    }
  }

  // Takes the result of a finished read; never waits.
  void Harvest() {
    if (!read_pending_) return;
    DWORD n = 0;
    if (::GetOverlappedResult(pipe_, &read_ov_, &n, FALSE)) {
      read_pending_ = false;
      in_.append(read_buf_, n);
      return;
    }
    const DWORD err = ::GetLastError();
    if (err == ERROR_IO_INCOMPLETE) return;
    read_pending_ = false;
    if (err == ERROR_MORE_DATA) {
      in_.append(read_buf_, n);
      return;
    }
    MarkBroken();
  }

  void MarkBroken() {
    broken_ = true;
    ::SetEvent(read_event_);
  }

  void CloseLocked() {
    if (pipe_ == INVALID_HANDLE_VALUE) return;
    if (read_pending_) {
      ::CancelIoEx(pipe_, &read_ov_);
      DWORD n = 0;
      ::GetOverlappedResult(pipe_, &read_ov_, &n, TRUE);
      read_pending_ = false;
    }
    ::CloseHandle(pipe_);
    pipe_ = INVALID_HANDLE_VALUE;
    MarkBroken();
  }

  std::mutex mu_;
  HANDLE pipe_;
  const bool server_end_;
  const HANDLE read_event_;
  const HANDLE write_event_;
  OVERLAPPED read_ov_{};
  char read_buf_[4096];
  bool read_pending_ = false;
  bool broken_ = false;
  std::string in_;   // bytes read and not yet taken
  size_t want_ = 1;  // bytes the next taker needs before the event fires
  HANDLE peer_process_ = nullptr;
  DWORD peer_pid_ = 0;
};

// A listening pipe: one instance waits for a client (an overlapped
// ConnectNamedPipe whose event is the ready event); Accept hands it out and
// creates the next one.
class PipeListener final : public PipeObject {
 public:
  ~PipeListener() override {
    ClosePending();
    if (connect_event_ != nullptr) ::CloseHandle(connect_event_);
    if (security_ != nullptr) ::LocalFree(security_);
  }

  static Status Create(const std::wstring& path, const std::string& address,
                       const std::vector<std::string>& allowed_sids,
                       std::unique_ptr<PipeListener>* out) {
    std::unique_ptr<PipeListener> l(new PipeListener(path));
    if (l->connect_event_ == nullptr) return WindowsErrorStatus("CreateEvent");
    std::string sddl;
    Status s = PipeDaclSddl(allowed_sids, &sddl);
    if (!s.ok()) return s;
    if (!::ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl.c_str(), SDDL_REVISION_1,
                                                                &l->security_, nullptr)) {
      return WindowsErrorStatus("security descriptor " + sddl);
    }
    // FILE_FLAG_FIRST_PIPE_INSTANCE refuses a name that is in use; wine
    // ignores it, so look first too (racy, but Windows closes the race).
    const BOOL instance_free = ::WaitNamedPipeW(path.c_str(), 1);
    const DWORD probe = instance_free ? ERROR_SUCCESS : ::GetLastError();
    if (instance_free || probe == ERROR_SEM_TIMEOUT || probe == ERROR_PIPE_BUSY) {
      return Status(StatusCode::kSystem,
                    "cannot listen on '" + address + "': address in use (EADDRINUSE)");
    }
    s = l->NewInstance(/*first=*/true);
    if (s.code() == StatusCode::kSystem &&
        (l->last_error_ == ERROR_ACCESS_DENIED || l->last_error_ == ERROR_PIPE_BUSY)) {
      return Status(StatusCode::kSystem,
                    "cannot listen on '" + address + "': address in use (EADDRINUSE)");
    }
    if (!s.ok()) return s;
    *out = std::move(l);
    return Status::Ok();
  }

  HANDLE ReadyEvent() override { return connect_event_; }
  bool is_pipe_end() const override { return false; }

  Status Accept(UniqueHandle* socket) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_ == INVALID_HANDLE_VALUE) {
      Status s = NewInstance(false);
      if (!s.ok()) return s;
    }
    if (!connected_) {
      DWORD n = 0;
      if (!::GetOverlappedResult(pending_, &ov_, &n, FALSE)) {
        const DWORD err = ::GetLastError();
        if (err == ERROR_IO_INCOMPLETE) return Status::WouldBlock();
        // A client came and went: hand out the instance anyway (its reads
        // see the hang-up) unless the instance itself failed.
        if (err != ERROR_NO_DATA && err != ERROR_PIPE_CONNECTED) {
          ClosePending();
          Status s = NewInstance(false);
          return s.ok() ? Status::WouldBlock() : s;
        }
      }
    }
    auto end = std::make_unique<PipeEnd>(pending_, /*server_end=*/true);
    if (!end->ok()) return WindowsErrorStatus("CreateEvent");
    end->LearnPeer();
    pending_ = INVALID_HANDLE_VALUE;
    connected_ = false;
    ::ResetEvent(connect_event_);
    socket->reset(TagPipeObject(end.release()));
    // The next instance; if that fails, the next Accept tries again.
    (void)NewInstance(false);
    return Status::Ok();
  }

 private:
  explicit PipeListener(std::wstring path)
      : path_(std::move(path)), connect_event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {}

  Status NewInstance(bool first) {
    SECURITY_ATTRIBUTES sa{sizeof(sa), security_, FALSE};
    pending_ = ::CreateNamedPipeW(
        path_.c_str(),
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
        PIPE_UNLIMITED_INSTANCES, kPipeBufferBytes, kPipeBufferBytes, 0, &sa);
    if (pending_ == INVALID_HANDLE_VALUE) {
      last_error_ = ::GetLastError();
      return WindowsErrorStatus("CreateNamedPipe", last_error_);
    }
    ov_ = OVERLAPPED{};
    ov_.hEvent = connect_event_;
    ::ResetEvent(connect_event_);
    connected_ = false;
    if (::ConnectNamedPipe(pending_, &ov_)) {
      connected_ = true;
    } else {
      const DWORD err = ::GetLastError();
      if (err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) {
        connected_ = true;  // a client got in between create and connect
      } else if (err != ERROR_IO_PENDING) {
        last_error_ = err;
        ClosePending();
        return WindowsErrorStatus("ConnectNamedPipe", err);
      }
    }
    if (connected_) ::SetEvent(connect_event_);
    return Status::Ok();
  }

  void ClosePending() {
    if (pending_ == INVALID_HANDLE_VALUE) return;
    if (!connected_) {
      ::CancelIoEx(pending_, &ov_);
      DWORD n = 0;
      ::GetOverlappedResult(pending_, &ov_, &n, TRUE);
    }
    ::CloseHandle(pending_);
    pending_ = INVALID_HANDLE_VALUE;
  }

  std::mutex mu_;
  const std::wstring path_;
  const HANDLE connect_event_;
  PSECURITY_DESCRIPTOR security_ = nullptr;
  HANDLE pending_ = INVALID_HANDLE_VALUE;
  OVERLAPPED ov_{};
  bool connected_ = false;
  DWORD last_error_ = 0;
};

PipeEnd* PipeEndOf(NativeHandle h) {
  PipeObject* o = AsPipeObject(h);
  return o != nullptr && o->is_pipe_end() ? static_cast<PipeEnd*>(o) : nullptr;
}

PipeListener* ListenerOf(NativeHandle h) {
  PipeObject* o = AsPipeObject(h);
  return o != nullptr && !o->is_pipe_end() ? static_cast<PipeListener*>(o) : nullptr;
}

Status NotAPipe() { return Status(StatusCode::kInvalidArgument, "handle is not a pipe end"); }

// The kernel's name for the type of object `h` refers to ("Event", ...).
std::wstring ObjectTypeName(HANDLE h) {
  alignas(PUBLIC_OBJECT_TYPE_INFORMATION) char buf[512];
  ULONG len = 0;
  if (::NtQueryObject(h, ObjectTypeInformation, buf, sizeof(buf), &len) != 0) return L"";
  const UNICODE_STRING& name = reinterpret_cast<PUBLIC_OBJECT_TYPE_INFORMATION*>(buf)->TypeName;
  return std::wstring(name.Buffer, name.Length / sizeof(wchar_t));
}

// A value the peer claims is a handle it duplicated into us. It must name
// an open handle of a kind the protocol carries (a section or an event),
// not a value named twice; beyond that a peer able to push handles into us
// (one running as our user) is trusted not to name such handles we already
// own.
bool PlausibleHandle(uint64_t v, const std::vector<uint64_t>& all, size_t index) {
  const NativeHandle h = static_cast<NativeHandle>(v);
  if (h == kInvalidHandle || h == 0 || (h & 3) != 0) return false;
  for (size_t i = 0; i < index; ++i) {
    if (all[i] == v) return false;
  }
  DWORD flags = 0;
  if (!::GetHandleInformation(AsHandle(h), &flags)) return false;
  const std::wstring type = ObjectTypeName(AsHandle(h));
  return type == L"Section" || type == L"Event";
}

}  // namespace

Status ListenLocal(const std::string& address, int backlog,
                   const std::vector<std::string>& allowed_sids, UniqueHandle* listener,
                   LocalSocketFile* bound) {
  std::wstring path;
  Status s = PipePath(address, &path);
  if (!s.ok()) return s;
  std::unique_ptr<PipeListener> l;
  s = PipeListener::Create(path, address, allowed_sids, &l);
  if (!s.ok()) return s;
  listener->reset(TagPipeObject(l.release()));
  if (bound != nullptr) *bound = LocalSocketFile{};  // a pipe vanishes with its last handle
  return Status::Ok();
}

Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener,
                   LocalSocketFile* bound) {
  return ListenLocal(address, backlog, {}, listener, bound);
}

Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener) {
  return ListenLocal(address, backlog, {}, listener, nullptr);
}

Status ConnectLocal(const std::string& address, int timeout_ms, UniqueHandle* socket) {
  std::wstring path;
  Status s = PipePath(address, &path);
  if (!s.ok()) return s;
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  for (;;) {
    HANDLE h = ::CreateFileW(path.c_str(), kClientAccess, 0, nullptr, OPEN_EXISTING,
                             FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                             nullptr);
    if (h != INVALID_HANDLE_VALUE) {
      auto end = std::make_unique<PipeEnd>(h, /*server_end=*/false);
      if (!end->ok()) return WindowsErrorStatus("CreateEvent");
      end->LearnPeer();
      socket->reset(TagPipeObject(end.release()));
      return Status::Ok();
    }
    const DWORD err = ::GetLastError();
    if (err != ERROR_PIPE_BUSY) return WindowsErrorStatus("connect to " + address, err);
    // Every instance is taken: wait for the server to create the next one.
    const DWORD left = RemainingMs(deadline);
    if (left == 0) return Status(StatusCode::kTimeout, "timed out connecting to " + address);
    ::WaitNamedPipeW(path.c_str(), std::max<DWORD>(1, std::min<DWORD>(left, 100)));
  }
}

Status AcceptLocal(NativeHandle listener, UniqueHandle* socket) {
  PipeListener* l = ListenerOf(listener);
  if (l == nullptr) return Status(StatusCode::kInvalidArgument, "handle is not a pipe listener");
  return l->Accept(socket);
}

Status OpenReserveHandle(UniqueHandle* reserve) {
  // Windows has no per-process descriptor limit to shed at; the reserve is
  // a placeholder so callers' bookkeeping stays the same.
  HANDLE h = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (h == nullptr) return WindowsErrorStatus("CreateEvent");
  reserve->reset(FromHandle(h));
  return Status::Ok();
}

Status AcceptLocalOrShed(NativeHandle listener, UniqueHandle* reserve, UniqueHandle* socket,
                         bool* shed) {
  *shed = false;
  return AcceptLocal(listener, socket);
}

void UnlinkLocal(const std::string&) {}
void UnlinkLocal(const std::string&, const LocalSocketFile&) {}

Status GetPeerCredentials(NativeHandle socket, PeerCredentials* creds) {
  PipeEnd* end = PipeEndOf(socket);
  if (end == nullptr) return NotAPipe();
  HANDLE process = nullptr;
  DWORD pid = 0;
  Status s = end->PeerProcess(&process, &pid);
  if (!s.ok()) return s;
  PeerCredentials c;
  c.pid = static_cast<pid_t>(pid);
  s = ProcessUserSid(process, &c.user_sid);
  if (!s.ok()) return s;
  *creds = std::move(c);
  return Status::Ok();
}

Status SendMessage(NativeHandle socket, const void* data, size_t size,
                   const std::vector<NativeHandle>& handles, int timeout_ms) {
  PipeEnd* end = PipeEndOf(socket);
  if (end == nullptr) return NotAPipe();
  if (handles.size() > kMaxHandlesPerMessage) {
    return Status(StatusCode::kInvalidArgument, "too many handles in one message");
  }
  if (!handles.empty() && !end->server_end()) {
    return Status(StatusCode::kInvalidArgument, "only the server end of a pipe passes handles");
  }
  HANDLE process = nullptr;
  DWORD pid = 0;
  std::vector<uint64_t> remote;
  if (!handles.empty()) {
    Status s = end->PeerProcess(&process, &pid);
    if (!s.ok()) return s;
  }
  auto close_remote = [&] {
    for (uint64_t r : remote) {
      ::DuplicateHandle(process, reinterpret_cast<HANDLE>(static_cast<uintptr_t>(r)), nullptr,
                        nullptr, 0, FALSE, DUPLICATE_CLOSE_SOURCE);
    }
  };
  for (NativeHandle h : handles) {
    HANDLE r = nullptr;
    if (IsPipeObject(h) || h == kInvalidHandle) {
      close_remote();
      return Status(StatusCode::kInvalidArgument, "only kernel handles can be passed");
    }
    if (!::DuplicateHandle(::GetCurrentProcess(), AsHandle(h), process, &r, 0, FALSE,
                           DUPLICATE_SAME_ACCESS)) {
      Status s = WindowsErrorStatus("DuplicateHandle into peer " + std::to_string(pid));
      close_remote();
      return s;
    }
    remote.push_back(reinterpret_cast<uintptr_t>(r));
  }
  MessageHeader header{kMessageMagic, static_cast<uint32_t>(remote.size())};
  std::string buf(reinterpret_cast<const char*>(&header), sizeof(header));
  buf.append(reinterpret_cast<const char*>(remote.data()), 8 * remote.size());
  buf.append(static_cast<const char*>(data), size);
  Status s = end->Write(buf.data(), buf.size(), DeadlineFromMs(timeout_ms));
  if (!s.ok()) close_remote();
  return s;
}

Status MessageReceiver::Receive(NativeHandle socket) {
  PipeEnd* end = PipeEndOf(socket);
  if (end == nullptr) return NotAPipe();
  std::vector<uint64_t> values;
  Status s = end->TakeMessage(data_, size_, max_handles_, &values);
  if (!s.ok()) return s;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!PlausibleHandle(values[i], values, i)) {
      handles_.clear();  // the ones adopted so far are ours: closed here
      return Status(StatusCode::kProtocol, "peer sent a value that is not a handle it gave us");
    }
    handles_.emplace_back(static_cast<NativeHandle>(values[i]));
  }
  received_ = size_;
  return Status::Ok();
}

Status ReceiveMessage(NativeHandle socket, void* data, size_t size, size_t max_handles,
                      std::vector<UniqueHandle>* handles, int timeout_ms) {
  MessageReceiver receiver(data, size, max_handles);
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  for (;;) {
    Status s = receiver.Receive(socket);
    if (s.ok()) {
      *handles = std::move(receiver.handles());
      return s;
    }
    if (s.code() != StatusCode::kWouldBlock) return s;
    if (::WaitForSingleObject(WaitableFor(socket), RemainingMs(deadline)) == WAIT_TIMEOUT) {
      return Status(StatusCode::kTimeout, "timed out waiting for the handshake");
    }
  }
}

Status CheckAlive(NativeHandle socket) {
  PipeEnd* end = PipeEndOf(socket);
  if (end == nullptr) return NotAPipe();
  return end->CheckAlive();
}

Status WaitForHangup(NativeHandle socket, int timeout_ms) {
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  for (;;) {
    Status s = CheckAlive(socket);
    if (!s.ok()) return s;
    if (::WaitForSingleObject(WaitableFor(socket), RemainingMs(deadline)) == WAIT_TIMEOUT) {
      return Status(StatusCode::kTimeout, "timed out waiting for hang-up");
    }
  }
}

Status WaitReadable(NativeHandle handle, int timeout_ms) {
  const DWORD r =
      ::WaitForSingleObject(WaitableFor(handle), timeout_ms < 0 ? INFINITE : DWORD(timeout_ms));
  if (r == WAIT_OBJECT_0) return Status::Ok();
  if (r == WAIT_TIMEOUT) return Status(StatusCode::kTimeout, "timed out waiting for a connection");
  return WindowsErrorStatus("WaitForSingleObject");
}

bool IsSocket(NativeHandle handle) { return PipeEndOf(handle) != nullptr; }

void ShutdownLocal(NativeHandle socket) {
  if (PipeEnd* end = PipeEndOf(socket)) end->Hangup();
}

}  // namespace platform
}  // namespace grpc_shm
