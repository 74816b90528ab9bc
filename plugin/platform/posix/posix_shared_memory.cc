// Portable shared memory: shm_open a random name, unlink it at once (so
// nothing is left in /dev/shm even if we crash the next instant), size it,
// and pass the descriptor. This is what macOS and the BSDs use.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>

#include "plugin/platform/platform.h"
#include "plugin/platform/shared_memory_internal.h"

namespace grpc_shm {
namespace platform {

Status CreatePosixShm(size_t size, UniqueHandle* handle) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 16; ++attempt) {
    const uint64_t nonce =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (counter.fetch_add(1) << 40);
    // macOS limits shm names to 31 characters.
    const std::string name =
        "/gshm." + std::to_string(::getpid() % 100000) + "." + std::to_string(nonce % 1000000000);
    // No O_CLOEXEC: POSIX has shm_open set FD_CLOEXEC itself, and macOS
    // documents only O_RDONLY, O_RDWR, O_CREAT, O_EXCL and O_TRUNC for it.
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return ErrnoStatus("shm_open");
    }
    ::shm_unlink(name.c_str());
    UniqueHandle owned(fd);
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate");
    *handle = std::move(owned);
    return Status::Ok();
  }
  return Status(StatusCode::kSystem, "shm_open: no free name");
}

Status MapShared(NativeHandle fd, size_t size, MappedRegion* mapping) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat");
  if (static_cast<uint64_t>(st.st_size) != size) {
    return Status(StatusCode::kProtocol, "shared segment is " + std::to_string(st.st_size) +
                                             " bytes, expected " + std::to_string(size));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return ErrnoStatus("mmap");
  *mapping = MappedRegion(addr, size);
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
