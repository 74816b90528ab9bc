// Local (Unix domain) sockets: the handshake channel, the carrier of shared
// memory and doorbell descriptors (SCM_RIGHTS), the source of the peer's
// identity, and afterwards the liveness signal: when a process dies the
// kernel closes its end and the survivor sees hang-up at once.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "plugin/platform/platform.h"
#include "plugin/platform/posix/posix_internal.h"
#include "plugin/platform/wait_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

using Clock = std::chrono::steady_clock;

#ifdef __linux__
constexpr short kHangupEvents = POLLHUP | POLLERR | POLLRDHUP;
#else
constexpr short kHangupEvents = POLLHUP | POLLERR;
#endif
constexpr size_t kMaxHandlesPerMessage = 8;

Status ParseAddress(const std::string& address, sockaddr_un* sun, socklen_t* len) {
  std::memset(sun, 0, sizeof(*sun));
  sun->sun_family = AF_UNIX;
  if (address.empty()) return Status(StatusCode::kInvalidArgument, "empty socket address");
  if (address[0] == '@') {
#ifdef __linux__
    if (address.size() > sizeof(sun->sun_path)) {
      return Status(StatusCode::kInvalidArgument, "abstract socket name too long: " + address);
    }
    // Abstract namespace: a leading NUL, then the name (not NUL-terminated).
    std::memcpy(sun->sun_path + 1, address.data() + 1, address.size() - 1);
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    return Status::Ok();
#else
    return Status(StatusCode::kInvalidArgument, "abstract sockets are Linux-only: " + address);
#endif
  }
  if (address[0] != '/') {
    return Status(StatusCode::kInvalidArgument, "socket path must be absolute: " + address);
  }
  if (address.size() >= sizeof(sun->sun_path)) {
    return Status(StatusCode::kInvalidArgument, "socket path too long: " + address);
  }
  std::memcpy(sun->sun_path, address.c_str(), address.size() + 1);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
  return Status::Ok();
}

Status MakeSocket(UniqueHandle* out) {
#ifdef __linux__
  // Atomically close-on-exec: a fork + exec on another thread between
  // socket() and fcntl() would hand the child a copy of our socket, and a
  // socket that stays open in a stranger's process never hangs up.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket");
  out->reset(fd);
#else
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return ErrnoStatus("socket");
  out->reset(fd);
  Status s = SetNonBlockingCloexec(fd);
  if (!s.ok()) return s;
#endif
  SetNoSigpipe(fd);
  return Status::Ok();
}

int RemainingMs(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Clock::time_point DeadlineFromMs(int timeout_ms) {
  return timeout_ms < 0 ? Clock::time_point::max()
                        : Clock::now() + std::chrono::milliseconds(timeout_ms);
}

// Waits for `events` on `fd` until `deadline`.
Status PollOne(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return Status::Ok();
    if (n == 0) return Status(StatusCode::kTimeout, std::string("timed out ") + what);
    if (errno != EINTR) return ErrnoStatus("poll");
  }
}

// AcceptLocal, also reporting the errno of a failed accept in `*err`.
Status AcceptOnce(NativeHandle listener, UniqueHandle* socket, int* err) {
  *err = 0;
  for (;;) {
#ifdef __linux__
    // accept4: close-on-exec from the start (see MakeSocket).
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = ::accept(listener, nullptr, nullptr);
#endif
    if (fd >= 0) {
      UniqueHandle owned(fd);
#ifndef __linux__
      Status s = SetNonBlockingCloexec(fd);
      if (!s.ok()) return s;
      // Whether an accepted socket inherits SO_NOSIGPIPE from its listener
      // differs between systems; set it for certain.
      SetNoSigpipe(fd);
#endif
      *socket = std::move(owned);
      return Status::Ok();
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WouldBlock();
    *err = errno;
    return ErrnoStatus("accept", *err);
  }
}

// Whether a server listens on the socket file at `sun`: a refused connect
// means nobody (a crashed server left the file behind). A full backlog
// (EAGAIN) or anything we cannot interpret counts as live: replacing a
// live server's socket would silently steal its future clients.
bool SomeoneListens(const sockaddr_un& sun, socklen_t len) {
  UniqueHandle probe;
  if (!MakeSocket(&probe).ok()) return true;
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sun), len) == 0) return true;
  return errno != ECONNREFUSED;
}

// `address` could not be bound because something is there. Removes it only
// if it is a socket file nobody listens on; a regular file, a directory or
// a live server's socket is left alone and is an error.
Status ReplaceStaleSocketFile(const std::string& address, const sockaddr_un& sun, socklen_t len) {
  struct stat before;
  if (::lstat(address.c_str(), &before) != 0) {
    // Removed in the meantime: the caller's second bind will tell.
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("stat " + address);
  }
  if (!S_ISSOCK(before.st_mode)) {
    return Status(StatusCode::kInvalidArgument, "address in use (EADDRINUSE): " + address +
                                                    " exists and is not a socket; not removing it");
  }
  if (SomeoneListens(sun, len)) {
    return Status(StatusCode::kInvalidArgument,
                  "address in use (EADDRINUSE): a live server listens on " + address);
  }
  // Unlink only the stale file we probed, not one a new server bound since.
  struct stat now;
  if (::lstat(address.c_str(), &now) != 0) return Status::Ok();
  if (now.st_dev != before.st_dev || now.st_ino != before.st_ino) {
    return Status(StatusCode::kInvalidArgument,
                  "address in use (EADDRINUSE): " + address + " was replaced while we looked");
  }
  if (::unlink(address.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + address);
  return Status::Ok();
}

}  // namespace

Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener) {
  LocalSocketFile bound;
  return ListenLocal(address, backlog, listener, &bound);
}

Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener,
                   LocalSocketFile* bound) {
  *bound = LocalSocketFile();
  sockaddr_un sun;
  socklen_t len;
  Status s = ParseAddress(address, &sun, &len);
  if (!s.ok()) return s;
  UniqueHandle fd;
  s = MakeSocket(&fd);
  if (!s.ok()) return s;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) != 0) {
    if (errno != EADDRINUSE) return ErrnoStatus("bind " + address);
    if (address[0] == '@') {
      return Status(StatusCode::kInvalidArgument,
                    "address in use (EADDRINUSE): abstract socket " + address + " is taken");
    }
    s = ReplaceStaleSocketFile(address, sun, len);
    if (!s.ok()) return s;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) != 0) {
      return ErrnoStatus("bind " + address);
    }
  }
  if (address[0] == '/') {
    // Our socket file, as it is now: at shutdown we remove the path only if
    // it still names this file, not whatever someone put there since.
    struct stat st;
    if (::lstat(address.c_str(), &st) != 0) return ErrnoStatus("stat " + address);
    bound->device = static_cast<uint64_t>(st.st_dev);
    bound->inode = static_cast<uint64_t>(st.st_ino);
    bound->valid = true;
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus("listen " + address);
  *listener = std::move(fd);
  return Status::Ok();
}

Status ConnectLocal(const std::string& address, int timeout_ms, UniqueHandle* socket) {
  sockaddr_un sun;
  socklen_t len;
  Status s = ParseAddress(address, &sun, &len);
  if (!s.ok()) return s;
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  for (;;) {
    UniqueHandle fd;
    s = MakeSocket(&fd);
    if (!s.ok()) return s;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) == 0) {
      *socket = std::move(fd);
      return Status::Ok();
    }
    if (errno == EINPROGRESS) {
      s = PollOne(fd.get(), POLLOUT, deadline, "connecting");
      if (!s.ok()) return s;
      int err = 0;
      socklen_t elen = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err != 0) return ErrnoStatus("connect " + address, err);
      *socket = std::move(fd);
      return Status::Ok();
    }
    // A full backlog answers EAGAIN on Linux: retry until the deadline.
    if (errno != EAGAIN || RemainingMs(deadline) == 0) {
      return ErrnoStatus("connect " + address);
    }
    ::usleep(1000);
  }
}

Status AcceptLocal(NativeHandle listener, UniqueHandle* socket) {
  int err;
  return AcceptOnce(listener, socket, &err);
}

Status OpenReserveHandle(UniqueHandle* reserve) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open /dev/null");
  reserve->reset(fd);
  return Status::Ok();
}

Status AcceptLocalOrShed(NativeHandle listener, UniqueHandle* reserve, UniqueHandle* socket,
                         bool* shed) {
  *shed = false;
  // A reserve lost to another thread last time is taken back while
  // descriptors are plentiful.
  if (!reserve->valid()) (void)OpenReserveHandle(reserve);
  int err;
  Status s = AcceptOnce(listener, socket, &err);
  if (s.ok() || s.code() == StatusCode::kWouldBlock) return s;
  if ((err != EMFILE && err != ENFILE) || !reserve->valid()) return s;
  // Out of descriptors: give up the spare for a moment to take the pending
  // connection off the backlog and hang up on it. Its client sees hang-up
  // (and retries with backoff); the listener is no longer readable for it,
  // so a level-triggered poller does not call us again for nothing.
  reserve->reset();
  UniqueHandle dropped;
  Status taken = AcceptLocal(listener, &dropped);
  dropped.reset();
  // Best effort: if another thread took the slot in between, the next
  // shortage cannot shed and AcceptLocal's error is returned instead.
  (void)OpenReserveHandle(reserve);
  if (!taken.ok()) return taken.code() == StatusCode::kWouldBlock ? taken : s;
  *shed = true;
  return s;
}

void UnlinkLocal(const std::string& address) {
  if (!address.empty() && address[0] == '/') ::unlink(address.c_str());
}

void UnlinkLocal(const std::string& address, const LocalSocketFile& bound) {
  if (!bound.valid || address.empty() || address[0] != '/') return;
  struct stat st;
  if (::lstat(address.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) ||
      static_cast<uint64_t>(st.st_dev) != bound.device ||
      static_cast<uint64_t>(st.st_ino) != bound.inode) {
    return;  // no longer ours: another server (or someone else) owns the path now
  }
  ::unlink(address.c_str());
}

// GetPeerCredentials: one per OS, linux/peer_credentials.cc and
// posix/peer_credentials_bsd.cc.

Status SendMessage(NativeHandle socket, const void* data, size_t size,
                   const std::vector<NativeHandle>& handles, int timeout_ms) {
  if (handles.size() > kMaxHandlesPerMessage) {
    return Status(StatusCode::kInvalidArgument, "too many handles in one message");
  }
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  size_t sent = 0;
  bool handles_sent = handles.empty();
  while (sent < size || !handles_sent) {
    iovec iov = {const_cast<uint8_t*>(p + sent), size - sent};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxHandlesPerMessage)];
    if (!handles_sent) {
      const size_t bytes = sizeof(int) * handles.size();
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(bytes);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(bytes);
      std::memcpy(CMSG_DATA(cmsg), handles.data(), bytes);
    }
    ssize_t n = SendMsgNoSigpipe(socket, &msg, 0);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      handles_sent = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Status s = PollOne(socket, POLLOUT, deadline, "sending handshake");
      if (!s.ok()) return s;
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET) {
      return Status(StatusCode::kPeerClosed, "peer closed the socket during the handshake");
    }
    return ErrnoStatus("sendmsg");
  }
  return Status::Ok();
}

Status MessageReceiver::Receive(NativeHandle socket) {
  while (received_ < size_) {
    iovec iov = {data_ + received_, size_ - received_};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxHandlesPerMessage)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
#ifdef __linux__
    // Close-on-exec as they arrive (see MakeSocket).
    const int flags = MSG_CMSG_CLOEXEC;
#else
    const int flags = 0;  // set below, as soon as they are ours
#endif
    ssize_t n = ::recvmsg(socket, &msg, flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WouldBlock();
      if (errno == ECONNRESET) {
        handles_.clear();
        return Status(StatusCode::kPeerClosed, "peer reset the socket during the handshake");
      }
      handles_.clear();
      return ErrnoStatus("recvmsg");
    }
    // Take ownership of every descriptor first, so none leaks whatever
    // else is wrong with the message.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        handles_.emplace_back(fd);
#ifndef __linux__
        (void)SetCloexec(fd);
#endif
      }
    }
    // Checked at every piece, not once the message is whole: a peer that
    // sends its message a byte at a time with descriptors on each byte must
    // not make us hold them until it finishes (or never does).
    Status error;
    if (msg.msg_flags & MSG_CTRUNC) {
      // The kernel closed what did not fit; still a peer breaking the rules.
      error = Status(StatusCode::kProtocol,
                     "peer sent more descriptors than allowed (control data truncated)");
    } else if (handles_.size() > max_handles_) {
      error = Status(StatusCode::kProtocol, "peer sent " + std::to_string(handles_.size()) +
                                                " descriptors, at most " +
                                                std::to_string(max_handles_) + " allowed");
    }
    if (!error.ok()) {
      handles_.clear();
      return error;
    }
    if (n == 0) {
      handles_.clear();
      return Status(StatusCode::kPeerClosed, received_ == 0
                                                 ? "peer closed the socket during the handshake"
                                                 : "peer closed the socket mid-message");
    }
    received_ += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ReceiveMessage(NativeHandle socket, void* data, size_t size, size_t max_handles,
                      std::vector<UniqueHandle>* handles, int timeout_ms) {
  handles->clear();
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  MessageReceiver receiver(data, size, max_handles);
  for (;;) {
    Status s = receiver.Receive(socket);
    if (s.ok()) *handles = std::move(receiver.handles());
    if (s.code() != StatusCode::kWouldBlock) return s;
    s = PollOne(socket, POLLIN, deadline, "waiting for the handshake");
    if (!s.ok()) return s;
  }
}

Status CheckAlive(NativeHandle socket) {
  char byte;
  ssize_t n = ::recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return Status(StatusCode::kPeerClosed, "peer hung up");
  if (n > 0) {
    // Nothing may follow the handshake on this socket: a peer that writes is
    // broken or hostile; drop the connection.
    return Status(StatusCode::kPeerClosed, "peer sent unexpected bytes on the liveness socket");
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Status::Ok();
  return Status(StatusCode::kPeerClosed, std::string("peer socket failed: ") + strerror(errno));
}

Status WaitReadable(NativeHandle handle, int timeout_ms) {
  return PollOne(handle, POLLIN, DeadlineFromMs(timeout_ms), "waiting for a connection");
}

bool IsSocket(NativeHandle handle) {
  struct stat st;
  return ::fstat(handle, &st) == 0 && S_ISSOCK(st.st_mode);
}

void ShutdownLocal(NativeHandle socket) { ::shutdown(socket, SHUT_RDWR); }

Status WaitForHangup(NativeHandle socket, int timeout_ms) {
  const Clock::time_point deadline = DeadlineFromMs(timeout_ms);
  for (;;) {
    Status s = PollOne(socket, POLLIN | kHangupEvents, deadline, "waiting for hang-up");
    if (!s.ok()) return s;
    s = CheckAlive(socket);
    if (!s.ok()) return s;
  }
}

Status PollReadableOrHangup(NativeHandle fd, NativeHandle liveness, int timeout_ms) {
  pollfd p[2] = {{fd, POLLIN, 0}, {liveness, static_cast<short>(POLLIN | kHangupEvents), 0}};
  const nfds_t n = liveness == kInvalidHandle ? 1 : 2;
  int r = ::poll(p, n, timeout_ms);
  if (r < 0) return errno == EINTR ? Status::Ok() : ErrnoStatus("poll");
  if (r == 0) return Status(StatusCode::kTimeout, "timed out waiting for the peer");
  if (n == 2 && p[1].revents != 0) {
    Status s = CheckAlive(liveness);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
