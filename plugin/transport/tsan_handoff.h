// Debian's libgrpc is not built with ThreadSanitizer, so TSan does not see
// the locks and atomics with which gRPC carries our objects from one thread
// to another: a closure we schedule, an fd we ask it to watch, a transport we
// hand to a subchannel or a server. Without a mark, TSan reports the first
// touch on the receiving thread as a race with the thread that made the
// object. HandOff(p) before giving `p` to gRPC and TakeOver(p) where gRPC
// gives it back say exactly that to TSan; they compile to nothing in every
// other build. They never hide a race between two threads of our own: those
// meet through our own (instrumented) mutexes and atomics.
#ifndef GRPC_SHM_TRANSPORT_TSAN_HANDOFF_H_
#define GRPC_SHM_TRANSPORT_TSAN_HANDOFF_H_

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace grpc_shm {
namespace transport {

#if defined(__SANITIZE_THREAD__)
inline void HandOff(const void* p) { __tsan_release(const_cast<void*>(p)); }
inline void TakeOver(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
#else
inline void HandOff(const void*) {}
inline void TakeOver(const void*) {}
#endif

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TSAN_HANDOFF_H_
