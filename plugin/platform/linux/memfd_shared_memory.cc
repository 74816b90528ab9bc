// Linux shared memory: an anonymous memfd, sealed so neither side can resize
// it. Nothing ever appears in /dev/shm, and the memory dies with the last
// fd or mapping. Also how idle pages of any shared mapping are given back.
#include "plugin/platform/shared_memory_internal.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace grpc_shm {
namespace platform {

#ifdef __linux__
namespace {
constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
}

Status CreateMemfd(size_t size, UniqueHandle* handle) {
  int fd = ::memfd_create("grpc-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return ErrnoStatus("memfd_create");
  UniqueHandle owned(fd);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate");
  if (::fcntl(fd, F_ADD_SEALS, kRequiredSeals) != 0) return ErrnoStatus("F_ADD_SEALS");
  *handle = std::move(owned);
  return Status::Ok();
}

// MADV_REMOVE punches a hole in the file behind a shared mapping (memfd and
// POSIX shm are both tmpfs here), with no descriptor needed: the pages leave
// the page cache and every process's page tables, and read as zeros. Our
// seals (shrink, grow, seal) allow it; only a write seal would not.
Status ReleaseSharedPages(const MappedRegion& mapping, size_t offset, size_t size,
                          size_t* released) {
  *released = 0;
  if (offset > mapping.size() || size > mapping.size() - offset) {
    return Status(StatusCode::kInvalidArgument, "range outside the mapping");
  }
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(mapping.data()) + offset;
  const uintptr_t first = (begin + page - 1) & ~(page - 1);
  const uintptr_t last = (begin + size) & ~(page - 1);
  if (first >= last) return Status::Ok();
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_REMOVE) != 0) {
    // Kernels or file systems without hole punching: keep the memory.
    if (errno == EINVAL || errno == EOPNOTSUPP) return Status::Ok();
    return ErrnoStatus("madvise(MADV_REMOVE)");
  }
  *released = last - first;
  return Status::Ok();
}

Status CheckMemfdSeals(NativeHandle fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return ErrnoStatus("F_GET_SEALS");
  if ((seals & kRequiredSeals) != kRequiredSeals) {
    return Status(StatusCode::kProtocol, "shared segment is not sealed against resizing");
  }
  return Status::Ok();
}
#else
// Elsewhere (macOS, the BSDs) shared pages stay until the segment goes: no
// portable call frees the pages of a shared mapping in every process.
Status ReleaseSharedPages(const MappedRegion& mapping, size_t offset, size_t size,
                          size_t* released) {
  *released = 0;
  if (offset > mapping.size() || size > mapping.size() - offset) {
    return Status(StatusCode::kInvalidArgument, "range outside the mapping");
  }
  return Status::Ok();
}

Status CreateMemfd(size_t, UniqueHandle*) {
  return Status(StatusCode::kInvalidArgument, "memfd is Linux-only");
}
Status CheckMemfdSeals(NativeHandle) {
  return Status(StatusCode::kInvalidArgument, "memfd is Linux-only");
}
#endif

}  // namespace platform
}  // namespace grpc_shm
