// Chooses the doorbell backend.
#include "plugin/platform/doorbells.h"

namespace grpc_shm {
namespace platform {

bool IsSupported(DoorbellKind kind) {
  switch (kind) {
    case DoorbellKind::kEventFd:
    case DoorbellKind::kFutex:
#ifdef __linux__
      return true;
#else
      return false;
#endif
    case DoorbellKind::kSocket:
      return true;
  }
  return false;
}

Status CreateDoorbell(DoorbellKind kind, DoorbellHandles* out) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "doorbell kind not supported here");
  }
  switch (kind) {
#ifdef __linux__
    case DoorbellKind::kEventFd:
      return CreateEventFdDoorbell(out);
    case DoorbellKind::kFutex:
      return Status::Ok();  // the wait word in the segment is the doorbell
#endif
    default:
      return Status::Ok();  // kSocket: the connection's own socket is the doorbell
  }
}

std::unique_ptr<WakeReceiver> MakeWakeReceiver(DoorbellKind kind, UniqueHandle wait) {
  switch (kind) {
#ifdef __linux__
    case DoorbellKind::kEventFd:
      return MakeEventFdReceiver(std::move(wait));
    case DoorbellKind::kFutex:
      return MakeFutexReceiver();
#endif
    default:
      return MakeSocketReceiver(std::move(wait));
  }
}

std::unique_ptr<WakeSender> MakeWakeSender(DoorbellKind kind, UniqueHandle ring) {
  switch (kind) {
#ifdef __linux__
    case DoorbellKind::kEventFd:
      return MakeEventFdSender(std::move(ring));
    case DoorbellKind::kFutex:
      return MakeFutexSender();
#endif
    default:
      return MakeSocketSender(std::move(ring));
  }
}

}  // namespace platform
}  // namespace grpc_shm
