// The IPC core's status type is the platform layer's (plugin/platform/
// status.h): the layer below it reports the same codes, and including it
// here keeps every ipc::Status user unchanged.
#ifndef GRPC_SHM_IPC_STATUS_H_
#define GRPC_SHM_IPC_STATUS_H_

#include "plugin/platform/status.h"

namespace grpc_shm {
namespace ipc {

using platform::ErrnoStatus;
using platform::Status;
using platform::StatusCode;
using platform::StatusCodeName;

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_STATUS_H_
