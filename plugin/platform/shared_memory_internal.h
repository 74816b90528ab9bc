// Backend entry points behind CreateSharedMemory / MapSharedMemory.
#ifndef GRPC_SHM_PLATFORM_SHARED_MEMORY_INTERNAL_H_
#define GRPC_SHM_PLATFORM_SHARED_MEMORY_INTERNAL_H_

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

Status CreatePosixShm(size_t size, UniqueHandle* handle);
Status CreateMemfd(size_t size, UniqueHandle* handle);  // Linux only
Status CheckMemfdSeals(NativeHandle fd);                // Linux only
// Maps `fd` read-write after checking it is exactly `size` bytes.
Status MapShared(NativeHandle fd, size_t size, MappedRegion* mapping);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_SHARED_MEMORY_INTERNAL_H_
