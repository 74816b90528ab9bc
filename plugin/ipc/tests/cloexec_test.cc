// Every socket the IPC core creates is close-on-exec from the moment it
// exists (SOCK_CLOEXEC, accept4), not made so by a later fcntl(): in
// between, a fork + exec on another thread of the process would carry it
// into the child, and a liveness socket held open by a stranger never hangs
// up. The end state (FD_CLOEXEC set) cannot tell the two apart, so this
// binary interposes the socket calls and looks at the flags each was given.
//
// The IPC core is a static library linked into this executable, so its
// calls resolve to the definitions below, which record and forward to libc.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/tests/test_util.h"

namespace {

std::atomic<int> g_created{0};          // sockets created while recording
std::atomic<int> g_without_cloexec{0};  // ... of which not atomically close-on-exec
std::atomic<bool> g_recording{false};

void Record(bool cloexec) {
  if (!g_recording.load()) return;
  g_created.fetch_add(1);
  if (!cloexec) g_without_cloexec.fetch_add(1);
}

template <class F>
F Next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
  static auto real = Next<int (*)(int, int, int)>("socket");
  Record((type & SOCK_CLOEXEC) != 0);
  return real(domain, type, protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
  static auto real = Next<int (*)(int, int, int, int*)>("socketpair");
  Record((type & SOCK_CLOEXEC) != 0);
  return real(domain, type, protocol, sv);
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  static auto real = Next<int (*)(int, sockaddr*, socklen_t*)>("accept");
  Record(false);
  return real(fd, addr, len);
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  static auto real = Next<int (*)(int, sockaddr*, socklen_t*, int)>("accept4");
  Record((flags & SOCK_CLOEXEC) != 0);
  return real(fd, addr, len, flags);
}

}  // extern "C"

namespace grpc_shm {
namespace ipc {
namespace {

TEST(Cloexec, EverySocketOfAConnectionIsCloseOnExecFromCreation) {
  g_recording = true;
  const std::string address = testing::UniqueAddress("cloexec");
  std::unique_ptr<Listener> listener;
  Listener::Options options;
  ASSERT_TRUE(Listener::Listen(address, options, &listener).ok());
  std::unique_ptr<Connection> client, server;
  Status client_status;
  std::thread t([&] { client_status = Connect(address, DefaultConnectionOptions(), &client); });
  Status s = listener->Accept(&server, 5000);
  t.join();
  g_recording = false;
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(client_status.ok()) << client_status.ToString();
  // Listener, client socket, the accepted socket (the connection's sockets
  // are its doorbells too: no socketpairs).
  EXPECT_GE(g_created.load(), 3);
  EXPECT_EQ(g_without_cloexec.load(), 0);
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
