#include "plugin/platform/status.h"

#include <cerrno>
#include <cstring>

namespace grpc_shm {
namespace platform {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kWouldBlock:
      return "WOULD_BLOCK";
    case StatusCode::kTimeout:
      return "TIMEOUT";
    case StatusCode::kCorrupt:
      return "CORRUPT";
    case StatusCode::kProtocol:
      return "PROTOCOL";
    case StatusCode::kPeerClosed:
      return "PEER_CLOSED";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kSystem:
      return "SYSTEM";
  }
  return "UNKNOWN";
}

const std::string& Status::message() const {
  static const std::string* const kEmpty = new std::string();
  return message_ ? *message_ : *kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = StatusCodeName(code_);
  if (message_) s += ": " + *message_;
  return s;
}

Status ErrnoStatus(const std::string& what, int err) {
  return Status(StatusCode::kSystem, what + ": " + std::strerror(err));
}

Status ErrnoStatus(const std::string& what) { return ErrnoStatus(what, errno); }

}  // namespace platform
}  // namespace grpc_shm
