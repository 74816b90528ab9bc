// UniqueHandle, DuplicateHandle and MappedRegion for POSIX systems (Linux included).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

void UniqueHandle::reset(NativeHandle h) {
  if (h_ != kInvalidHandle) ::close(h_);
  h_ = h;
}

MappedRegion::MappedRegion(MappedRegion&& o) noexcept : addr_(o.addr_), size_(o.size_) {
  o.addr_ = nullptr;
  o.size_ = 0;
}

MappedRegion& MappedRegion::operator=(MappedRegion&& o) noexcept {
  if (this != &o) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

Status DuplicateHandle(NativeHandle handle, UniqueHandle* out) {
  NativeHandle dup = ::fcntl(handle, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("dup of handle " + std::to_string(handle));
  out->reset(dup);
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
