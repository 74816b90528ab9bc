// Forced first include (-include) of every IPC-core source in a
// GRPC_SHM_PORTABLE_POSIX build (cmake/GrpcShmPortablePosix.cmake): the
// portable POSIX configuration that macOS and the BSDs use, built on Linux
// with every Linux-only facility made a compile error, so none can creep
// into the code those systems compile.
//
// It pretends not to be Linux (__linux__ undefined, so the core takes the
// same branches as on macOS), includes the system headers the core uses
// while their Linux-only declarations are still legal, and then poisons
// those names: any later mention, even in #ifdef, fails the build. Macros
// are #undef'd first, so that a probe such as `#ifdef SOCK_CLOEXEC` in a file
// the build exempts from the poison (GRPC_SHM_PORTABLE_POSIX_UNDEF_ONLY, see
// the CMake module) sees a system without them, as on macOS. (One such file
// keeps MSG_NOSIGNAL, GRPC_SHM_PORTABLE_POSIX_KEEP_MSG_NOSIGNAL: Linux has
// no SO_NOSIGPIPE to stand in for it, see the CMake module.)
//
// /proc cannot be poisoned (it is a string); the CMake module greps the
// core's sources for it at build time instead.

#ifndef GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_POISON_H_
#define GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_POISON_H_

// libstdc++'s configuration (os_defines.h) is read while __linux__ is
// still defined, so the C++ library keeps the settings it was built with.
#include <cstddef>

#undef __linux__
#undef __linux
#undef __gnu_linux__
#undef linux

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

// Flags and options that are macros on Linux (glibc also declares some as
// enumerators, which the poison below covers).
#undef SOCK_CLOEXEC
#undef SOCK_NONBLOCK
#ifndef GRPC_SHM_PORTABLE_POSIX_KEEP_MSG_NOSIGNAL
#undef MSG_NOSIGNAL
#endif
#undef MSG_CMSG_CLOEXEC
#undef SO_PEERCRED
#undef SO_PEERSEC
#undef SCM_CREDENTIALS
#undef POLLRDHUP
#undef F_ADD_SEALS
#undef F_GET_SEALS
#undef F_SEAL_SEAL
#undef F_SEAL_SHRINK
#undef F_SEAL_GROW
#undef F_SEAL_WRITE
#undef MFD_CLOEXEC
#undef MFD_ALLOW_SEALING

#ifndef GRPC_SHM_PORTABLE_POSIX_UNDEF_ONLY
#pragma GCC poison SOCK_CLOEXEC SOCK_NONBLOCK MSG_NOSIGNAL MSG_CMSG_CLOEXEC POLLRDHUP
#endif
#pragma GCC poison SO_PEERCRED SO_PEERSEC SCM_CREDENTIALS ucred
#pragma GCC poison F_ADD_SEALS F_GET_SEALS F_SEAL_SEAL F_SEAL_SHRINK F_SEAL_GROW F_SEAL_WRITE
#pragma GCC poison memfd_create MFD_CLOEXEC MFD_ALLOW_SEALING
#pragma GCC poison eventfd eventfd_read eventfd_write EFD_CLOEXEC EFD_NONBLOCK EFD_SEMAPHORE
#pragma GCC poison syscall SYS_futex __NR_futex FUTEX_WAIT FUTEX_WAKE FUTEX_PRIVATE_FLAG
#pragma GCC poison epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_event
#pragma GCC poison EPOLLIN EPOLLRDHUP EPOLL_CLOEXEC
#pragma GCC poison timerfd_create timerfd_settime timerfd_gettime TFD_CLOEXEC TFD_NONBLOCK
#pragma GCC poison pipe2 accept4 dup3 signalfd inotify_init1 splice vmsplice
#pragma GCC poison ppoll sendmmsg recvmmsg getrandom gettid prctl

#endif  // GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_POISON_H_
