// UniqueHandle, DuplicateHandle and MappedRegion for POSIX systems (Linux
// included), and the descriptor set-up of posix_internal.h.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "plugin/platform/platform.h"
#include "plugin/platform/posix/posix_internal.h"

namespace grpc_shm {
namespace platform {

void UniqueHandle::reset(NativeHandle h) {
  if (h_ != kInvalidHandle) ::close(h_);
  h_ = h;
}

MappedRegion::MappedRegion(MappedRegion&& o) noexcept : addr_(o.addr_), size_(o.size_) {
  o.addr_ = nullptr;
  o.size_ = 0;
}

MappedRegion& MappedRegion::operator=(MappedRegion&& o) noexcept {
  if (this != &o) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

Status DuplicateHandle(NativeHandle handle, UniqueHandle* out) {
  NativeHandle dup = ::fcntl(handle, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("dup of handle " + std::to_string(handle));
  out->reset(dup);
  return Status::Ok();
}

Status SetCloexec(int fd) {
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fcntl FD_CLOEXEC");
  return Status::Ok();
}

Status SetNonBlockingCloexec(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return ErrnoStatus("fcntl O_NONBLOCK");
  return SetCloexec(fd);
}

void SetNoSigpipe([[maybe_unused]] int fd) {
#ifdef SO_NOSIGPIPE
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
}

ssize_t SendMsgNoSigpipe(int fd, const msghdr* msg, int flags) {
#if defined(__linux__)
  return ::sendmsg(fd, msg, flags | MSG_NOSIGNAL);
#elif defined(SO_NOSIGPIPE)
  return ::sendmsg(fd, msg, flags);  // the socket has SO_NOSIGPIPE (SetNoSigpipe)
#else
  // Neither: a SIGPIPE raised by this call is directed at this thread, so
  // blocking it here keeps it pending on this thread alone, where
  // sigtimedwait takes it off before the old mask returns. One that was
  // pending already is someone else's and stays.
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  const ssize_t n = ::sendmsg(fd, msg, flags);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const timespec zero = {0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
#endif
}

ssize_t SendNoSigpipe(int fd, const void* data, size_t size, int flags) {
  iovec iov = {const_cast<void*>(data), size};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return SendMsgNoSigpipe(fd, &msg, flags);
}

}  // namespace platform
}  // namespace grpc_shm
