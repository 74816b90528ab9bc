// Chooses the shared-memory backend.
#include "plugin/platform/platform.h"
#include "plugin/platform/shared_memory_internal.h"

namespace grpc_shm {
namespace platform {

bool IsSupported(SharedMemoryKind kind) {
  switch (kind) {
    case SharedMemoryKind::kMemfd:
#ifdef __linux__
      return true;
#else
      return false;
#endif
    case SharedMemoryKind::kPosixShm:
      return true;
  }
  return false;
}

Status CreateSharedMemory(SharedMemoryKind kind, size_t size, UniqueHandle* handle,
                          MappedRegion* mapping) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "shared memory kind not supported here");
  }
  Status s =
      kind == SharedMemoryKind::kMemfd ? CreateMemfd(size, handle) : CreatePosixShm(size, handle);
  if (!s.ok()) return s;
  return MapShared(handle->get(), size, mapping);
}

Status MapSharedMemory(SharedMemoryKind kind, NativeHandle handle, size_t size,
                       MappedRegion* mapping) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "shared memory kind not supported here");
  }
  if (kind == SharedMemoryKind::kMemfd) {
    Status s = CheckMemfdSeals(handle);
    if (!s.ok()) return s;
  }
  return MapShared(handle, size, mapping);
}

}  // namespace platform
}  // namespace grpc_shm
