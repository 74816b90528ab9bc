// gRPC adds its message compression filters only for transports whose name
// contains "http". This registers the same two filters, under the same
// channel args (GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION / _DECOMPRESSION),
// for the shm transport, so per-call and channel compression work as over
// TCP. The transport carries the compressed flag of each message end to end.
#ifndef GRPC_SHM_TRANSPORT_COMPRESSION_FILTERS_H_
#define GRPC_SHM_TRANSPORT_COMPRESSION_FILTERS_H_

namespace grpc_shm {
namespace transport {

// Must run before gRPC's core configuration is first built (the first
// channel or server); later calls are no-ops. Idempotent.
void RegisterCompressionFilters();

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_COMPRESSION_FILTERS_H_
