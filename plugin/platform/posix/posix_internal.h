// Descriptor set-up shared by the POSIX backends: what Linux does with
// creation flags (SOCK_CLOEXEC, SOCK_NONBLOCK, MSG_NOSIGNAL), done the way
// every POSIX system can.
#ifndef GRPC_SHM_PLATFORM_POSIX_POSIX_INTERNAL_H_
#define GRPC_SHM_PLATFORM_POSIX_POSIX_INTERNAL_H_

#include <sys/socket.h>
#include <sys/types.h>

#include "plugin/platform/status.h"

namespace grpc_shm {
namespace platform {

// fcntl: close-on-exec (and non-blocking). Where a flag could not be set at
// creation, a fork + exec on another thread in between can still carry the
// descriptor into the child; only Linux closes that window (the callers use
// the creation flags there).
Status SetCloexec(int fd);
Status SetNonBlockingCloexec(int fd);
// SO_NOSIGPIPE where the system has it (macOS, the BSDs): a write to a
// socket whose peer is gone fails with EPIPE instead of killing the process.
// A no-op elsewhere (Linux passes MSG_NOSIGNAL to every send instead).
void SetNoSigpipe(int fd);
// sendmsg that never raises SIGPIPE: MSG_NOSIGNAL on Linux, a socket with
// SO_NOSIGPIPE (SetNoSigpipe) on macOS and the BSDs, and where neither
// exists (Linux in GRPC_SHM_PORTABLE_POSIX builds) SIGPIPE blocked on this
// thread for the call and a SIGPIPE it raised taken off again.
ssize_t SendMsgNoSigpipe(int fd, const msghdr* msg, int flags);
ssize_t SendNoSigpipe(int fd, const void* data, size_t size, int flags);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_POSIX_POSIX_INTERNAL_H_
