// Linux shared memory: an anonymous memfd, sealed so neither side can resize
// it. Nothing ever appears in /dev/shm, and the memory dies with the last fd.
#include "plugin/platform/shared_memory_internal.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
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

Status CheckMemfdSeals(NativeHandle fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return ErrnoStatus("F_GET_SEALS");
  if ((seals & kRequiredSeals) != kRequiredSeals) {
    return Status(StatusCode::kProtocol, "shared segment is not sealed against resizing");
  }
  return Status::Ok();
}
#else
Status CreateMemfd(size_t, UniqueHandle*) {
  return Status(StatusCode::kInvalidArgument, "memfd is Linux-only");
}
Status CheckMemfdSeals(NativeHandle) {
  return Status(StatusCode::kInvalidArgument, "memfd is Linux-only");
}
#endif

}  // namespace platform
}  // namespace grpc_shm
