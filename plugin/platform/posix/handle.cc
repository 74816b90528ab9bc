// UniqueHandle and MappedRegion for POSIX systems (Linux included).
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

}  // namespace platform
}  // namespace grpc_shm
