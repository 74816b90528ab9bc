// A small status type shared by the platform layer and the IPC core above it
// (which uses it as ipc::Status), so neither depends on gRPC or Abseil status
// types, and platform depends on nothing above it. The transport maps these
// onto grpc_error / absl::Status.
#ifndef GRPC_SHM_PLATFORM_STATUS_H_
#define GRPC_SHM_PLATFORM_STATUS_H_

#include <memory>
#include <string>
#include <utility>

namespace grpc_shm {
namespace platform {

enum class StatusCode {
  kOk = 0,
  kWouldBlock,  // no data / no space right now; try again after a wakeup
  kTimeout,     // a deadline passed
  kCorrupt,     // the peer broke the shared control block or a frame
  kProtocol,    // the peer sent something the protocol does not allow
  kPeerClosed,  // the peer hung up or died
  kInvalidArgument,
  kSystem,  // an OS call failed (errno in the message)
};

const char* StatusCodeName(StatusCode code);

// Cheap on the hot path, as in LevelDB: OK and kWouldBlock carry no message
// and are two words (code and a null pointer); only errors allocate.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code),
        message_(message.empty() ? nullptr : std::make_unique<std::string>(std::move(message))) {}
  Status(const Status& other)
      : code_(other.code_),
        message_(other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) *this = Status(other);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status WouldBlock() { return Status(StatusCode::kWouldBlock); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const;
  // "CORRUPT: head 12 beyond tail 0 + capacity 8"
  std::string ToString() const;

 private:
  explicit Status(StatusCode code) : code_(code) {}

  StatusCode code_ = StatusCode::kOk;
  std::unique_ptr<std::string> message_;  // null when there is no message
};

// Builds a kSystem status from errno: "<what>: <strerror(errno)>".
Status ErrnoStatus(const std::string& what);
Status ErrnoStatus(const std::string& what, int err);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_STATUS_H_
