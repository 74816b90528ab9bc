// Server side: a Server::ListenerInterface on an shm address. The listening
// socket is watched by the poller; each accepted client's handshake is a
// state machine advanced by the poller (with a timer for its timeout),
// checked against the allow-list, and handed to gRPC with
// Server::SetupTransport.
#ifndef GRPC_SHM_TRANSPORT_LISTENER_H_
#define GRPC_SHM_TRANSPORT_LISTENER_H_

#include <string>

#include "absl/status/status.h"
#include "grpc_shm/options.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/security/credentials/credentials.h"
#include "src/core/lib/surface/server.h"

namespace grpc_shm {
namespace transport {

// Binds `ipc_address` ("/path" or "@name") now, so that errors surface from
// AddListeningPort, and adds the listener to `server`. `credentials` go into
// every connection's channel args, as chttp2 puts a secure port's: they hold
// the AuthMetadataProcessor.
absl::Status AddShmListener(grpc_core::Server* server, const std::string& ipc_address,
                            const ShmOptions& options,
                            grpc_core::RefCountedPtr<grpc_server_credentials> credentials);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_LISTENER_H_
