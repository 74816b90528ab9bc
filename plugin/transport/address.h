// The shm address forms and their translation to what the IPC core and
// gRPC's resolvers understand.
//
//   shm:///abs/path.sock  -> IPC "/abs/path.sock", resolver "unix:/abs/path.sock"
//   shm:@name             -> IPC "@name",          resolver "unix-abstract:name"
//
// Reusing gRPC's built-in unix resolvers means no resolver registration; the
// connector turns the resolved sockaddr_un back into the IPC form.
#ifndef GRPC_SHM_TRANSPORT_ADDRESS_H_
#define GRPC_SHM_TRANSPORT_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct grpc_resolved_address;

namespace grpc_shm {
namespace transport {

// "shm:///abs" or "shm:@name" -> "/abs" or "@name"; InvalidArgument otherwise.
absl::StatusOr<std::string> ParseShmAddress(absl::string_view target);
// "/abs" -> "unix:/abs"; "@name" -> "unix-abstract:name".
std::string ResolverUriFor(const std::string& ipc_address);
// A resolved unix-socket address back to the IPC form.
absl::StatusOr<std::string> IpcAddressFromResolved(const grpc_resolved_address& address);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_ADDRESS_H_
