// UniqueHandle, DuplicateHandle and MappedRegion for Windows.
#include <string>

#include "plugin/platform/windows/windows_internal.h"

namespace grpc_shm {
namespace platform {

Status WindowsErrorStatus(const std::string& what, DWORD err) {
  char buf[256] = {0};
  DWORD n = ::FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                             err, 0, buf, sizeof(buf), nullptr);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.')) buf[--n] = '\0';
  return Status(StatusCode::kSystem, what + ": " +
                                         (n > 0 ? std::string(buf) : std::string("error")) +
                                         " (error " + std::to_string(err) + ")");
}

void UniqueHandle::reset(NativeHandle h) {
  if (h_ != kInvalidHandle) {
    if (PipeObject* o = AsPipeObject(h_)) {
      delete o;
    } else {
      ::CloseHandle(AsHandle(h_));
    }
  }
  h_ = h;
}

MappedRegion::MappedRegion(MappedRegion&& o) noexcept : addr_(o.addr_), size_(o.size_) {
  o.addr_ = nullptr;
  o.size_ = 0;
}

MappedRegion& MappedRegion::operator=(MappedRegion&& o) noexcept {
  if (this != &o) {
    if (addr_ != nullptr) ::UnmapViewOfFile(addr_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (addr_ != nullptr) ::UnmapViewOfFile(addr_);
}

Status DuplicateHandle(NativeHandle handle, UniqueHandle* out) {
  if (IsPipeObject(handle)) {
    // Two objects would issue competing reads on one pipe.
    return Status(StatusCode::kInvalidArgument, "pipe ends cannot be duplicated on Windows");
  }
  HANDLE dup = nullptr;
  // Not inheritable: the Windows counterpart of close-on-exec.
  if (!::DuplicateHandle(::GetCurrentProcess(), AsHandle(handle), ::GetCurrentProcess(), &dup, 0,
                         FALSE, DUPLICATE_SAME_ACCESS)) {
    return WindowsErrorStatus("DuplicateHandle");
  }
  out->reset(FromHandle(dup));
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
