// Shared memory on Windows: an unnamed section backed by the paging file.
// Unnamed, so no other process can open it; it reaches the client only as a
// handle the server duplicates into the client process. A pagefile-backed
// section keeps the size it was created with, so a mapping of it can never
// turn into an access violation the way a truncated POSIX file can.
#include "plugin/platform/windows/windows_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

Status MapSection(HANDLE section, size_t size, MappedRegion* mapping) {
  // MapViewOfFile fails when `size` exceeds the section: that is the check
  // that the peer's section is as large as it claims.
  void* addr = ::MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, size);
  if (addr == nullptr)
    return WindowsErrorStatus("MapViewOfFile of " + std::to_string(size) + " bytes");
  MEMORY_BASIC_INFORMATION info{};
  if (::VirtualQuery(addr, &info, sizeof(info)) == 0 || info.RegionSize < size) {
    ::UnmapViewOfFile(addr);
    return Status(StatusCode::kProtocol, "shared memory is smaller than announced");
  }
  *mapping = MappedRegion(addr, size);
  return Status::Ok();
}

}  // namespace

bool IsSupported(SharedMemoryKind kind) { return kind == SharedMemoryKind::kSection; }

Status CreateSharedMemory(SharedMemoryKind kind, size_t size, UniqueHandle* handle,
                          MappedRegion* mapping) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "shared memory kind not supported here");
  }
  const unsigned long long bytes = size;
  HANDLE section = ::CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE,
                                        static_cast<DWORD>(bytes >> 32),
                                        static_cast<DWORD>(bytes & 0xffffffffu), nullptr);
  if (section == nullptr) return WindowsErrorStatus("CreateFileMapping");
  handle->reset(FromHandle(section));
  return MapSection(section, size, mapping);
}

Status MapSharedMemory(SharedMemoryKind kind, NativeHandle handle, size_t size,
                       MappedRegion* mapping) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "shared memory kind not supported here");
  }
  if (IsPipeObject(handle) || handle == kInvalidHandle) {
    return Status(StatusCode::kProtocol, "shared memory handle is not a section");
  }
  return MapSection(AsHandle(handle), size, mapping);
}

// Windows cannot drop pages of a shared section and promise zeros in their
// place (MEM_RESET / DiscardVirtualMemory leave the contents undefined), so
// nothing is released.
Status ReleaseSharedPages(const MappedRegion&, size_t, size_t, size_t* released) {
  *released = 0;
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
