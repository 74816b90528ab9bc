// Shared helpers of the pollable doorbells.
#ifndef GRPC_SHM_PLATFORM_WAIT_INTERNAL_H_
#define GRPC_SHM_PLATFORM_WAIT_INTERNAL_H_

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

// Polls `fd` for readability and `liveness` for hang-up. Ok when `fd` is
// readable, kPeerClosed on hang-up, kTimeout, or kSystem.
Status PollReadableOrHangup(NativeHandle fd, NativeHandle liveness, int timeout_ms);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_WAIT_INTERNAL_H_
