// How IPC failures and peer resets become gRPC errors. A broken or dead peer
// is UNAVAILABLE (the call may be retried elsewhere); a peer that violates
// the protocol is INTERNAL. Messages name the transport so logs say where.
#ifndef GRPC_SHM_TRANSPORT_ERRORS_H_
#define GRPC_SHM_TRANSPORT_ERRORS_H_

#include <grpc/status.h>

#include <string>

#include "absl/strings/string_view.h"
#include "plugin/ipc/status.h"
#include "src/core/lib/iomgr/error.h"

namespace grpc_shm {
namespace transport {

// An error carrying `code` as its gRPC status.
grpc_error_handle StatusError(grpc_status_code code, absl::string_view message);
// `what` says what we were doing ("reading from peer").
grpc_error_handle IpcError(const ipc::Status& status, absl::string_view what);
// The status code and message an error stands for, for trailers and resets.
void ErrorToStatus(grpc_error_handle error, grpc_status_code* code, std::string* message);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_ERRORS_H_
