#include "plugin/transport/errors.h"

#include "absl/strings/str_cat.h"
#include "src/core/lib/gprpp/status_helper.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/transport/error_utils.h"

namespace grpc_shm {
namespace transport {

grpc_error_handle StatusError(grpc_status_code code, absl::string_view message) {
  return grpc_error_set_int(GRPC_ERROR_CREATE(message), grpc_core::StatusIntProperty::kRpcStatus,
                            code);
}

grpc_error_handle IpcError(const ipc::Status& status, absl::string_view what) {
  grpc_status_code code = GRPC_STATUS_UNAVAILABLE;
  if (status.code() == ipc::StatusCode::kCorrupt || status.code() == ipc::StatusCode::kProtocol) {
    code = GRPC_STATUS_INTERNAL;
  }
  return StatusError(code, absl::StrCat("shm transport: ", what, ": ", status.ToString()));
}

void ErrorToStatus(grpc_error_handle error, grpc_status_code* code, std::string* message) {
  grpc_error_get_status(error, grpc_core::Timestamp::InfFuture(), code, message, nullptr, nullptr);
}

}  // namespace transport
}  // namespace grpc_shm
