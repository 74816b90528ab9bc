// Backend entry points behind the doorbell factory functions of platform.h.
#ifndef GRPC_SHM_PLATFORM_DOORBELLS_H_
#define GRPC_SHM_PLATFORM_DOORBELLS_H_

#include <memory>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

Status CreateEventFdDoorbell(DoorbellHandles* out);  // Linux
std::unique_ptr<WakeReceiver> MakeEventFdReceiver(UniqueHandle wait);
std::unique_ptr<WakeSender> MakeEventFdSender(UniqueHandle ring);
std::unique_ptr<WakeReceiver> MakeFutexReceiver();  // Linux
std::unique_ptr<WakeSender> MakeFutexSender();
// Any POSIX system: the socket is handed over, not created (platform.h).
std::unique_ptr<WakeReceiver> MakeSocketReceiver(UniqueHandle wait);
std::unique_ptr<WakeSender> MakeSocketSender(UniqueHandle ring);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_DOORBELLS_H_
