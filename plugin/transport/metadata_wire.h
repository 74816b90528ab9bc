// gRPC metadata batches <-> the IPC core's metadata blocks. Keys and values
// travel as raw bytes ("-bin" values included, never base64). Typed entries
// are written in their wire form (the deadline as grpc-timeout) and parsed
// back by grpc_metadata_batch::Append, so the receiver sees the same typed
// values. Process-local entries (grpc-internal-*, load-balancer stats) never
// leave the process.
#ifndef GRPC_SHM_TRANSPORT_METADATA_WIRE_H_
#define GRPC_SHM_TRANSPORT_METADATA_WIRE_H_

#include <grpc/status.h>

#include <string>
#include <vector>

#include "plugin/ipc/metadata_codec.h"
#include "src/core/lib/transport/metadata_batch.h"

namespace grpc_shm {
namespace transport {

std::string EncodeMetadata(const grpc_metadata_batch& batch);
// Whether `batch` holds only entries gRPC itself defines (no application
// metadata): chttp2's test for answering with trailers only.
bool HasOnlyDefaultMetadata(const grpc_metadata_batch& batch);
// Trailers that carry only a status, for cancellations.
std::string EncodeStatusTrailers(grpc_status_code code, const std::string& message);
// Appends decoded entries to `batch`. Entries gRPC cannot parse are dropped
// with a log line rather than failing the call, as chttp2 does.
void AppendMetadata(const std::vector<ipc::MetadataEntry>& entries, grpc_metadata_batch* batch);

// Checks a block from the peer as chttp2 checks HTTP/2 headers: keys are
// non-empty and made of [0-9a-z-_.] (pseudo-headers may start with ':'),
// values of keys not ending in "-bin" hold no CR, LF or NUL (except
// grpc-message, gRPC's own status text, carried unencoded). Reserved grpc-internal-* entries are
// dropped, not failed. Returns false with `why` set when the block must be refused.
bool ValidateMetadataFromPeer(std::vector<ipc::MetadataEntry>* entries, std::string* why);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_METADATA_WIRE_H_
