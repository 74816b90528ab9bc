// The shm address forms and their translation to what the IPC core and
// gRPC's resolvers understand.
//
//   shm:///abs/path.sock  -> IPC "/abs/path.sock", resolver "unix:/abs/path.sock"
//   shm:@name             -> IPC "@name",          resolver "unix-abstract:name"
//   shm:pipe:NAME         -> IPC "pipe:NAME" (Windows: the named pipe \\.\pipe\NAME)
//
// Reusing gRPC's built-in unix resolvers means no resolver registration; the
// connector turns the resolved sockaddr_un back into the IPC form. gRPC 1.51
// has no unix resolver on Windows, so a channel there cannot resolve a pipe
// address yet (README, Status): the server side only needs the parse.
#ifndef GRPC_SHM_TRANSPORT_ADDRESS_H_
#define GRPC_SHM_TRANSPORT_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct grpc_resolved_address;

namespace grpc_shm {
namespace transport {

enum class ShmAddressKind {
  kPath,      // shm:///abs/path: a Unix socket file (POSIX)
  kAbstract,  // shm:@name: a Linux abstract socket (parsed on every POSIX system)
  kPipe,      // shm:pipe:NAME: a named pipe (Windows)
};

struct ShmAddress {
  ShmAddressKind kind;
  std::string ipc_address;  // what the IPC core takes: "/abs", "@name", "pipe:NAME"
};

// Every form, whether or not this platform has it, so that the parse is the
// same (and tested) everywhere; InvalidArgument naming the target otherwise.
absl::StatusOr<ShmAddress> ParseAnyShmAddress(absl::string_view target);
// The forms this platform listens on and connects to: paths and @names on
// POSIX, pipes on Windows. A form of the other platform is InvalidArgument
// saying so.
absl::StatusOr<std::string> ParseShmAddress(absl::string_view target);
// "/abs" -> "unix:/abs"; "@name" -> "unix-abstract:name".
std::string ResolverUriFor(const std::string& ipc_address);
// A resolved unix-socket address back to the IPC form.
absl::StatusOr<std::string> IpcAddressFromResolved(const grpc_resolved_address& address);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_ADDRESS_H_
