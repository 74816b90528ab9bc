// ShmOptions travel from the credentials to the connector as channel args,
// so each subchannel (made by gRPC, possibly much later) connects with the
// options of the channel that asked for it.
#ifndef GRPC_SHM_TRANSPORT_OPTIONS_ARGS_H_
#define GRPC_SHM_TRANSPORT_OPTIONS_ARGS_H_

#include <string>
#include <vector>

#include "grpc_shm/options.h"
#include "plugin/ipc/connection.h"
#include "src/core/lib/channel/channel_args.h"

namespace grpc_shm {
namespace transport {

// Marks a channel as ours; also keeps its subchannels apart from those of a
// plain unix-socket channel to the same path in gRPC's subchannel pool.
constexpr char kArgIsShm[] = "grpc_shm.transport";
constexpr char kArgRingBytes[] = "grpc_shm.ring_bytes";
constexpr char kArgSpinNanos[] = "grpc_shm.spin_ns";
constexpr char kArgHandshakeMs[] = "grpc_shm.handshake_timeout_ms";
#ifdef _WIN32
// ShmOptions::allowed_server_sids, joined by commas (a SID string has none).
constexpr char kArgAllowedServerSids[] = "grpc_shm.allowed_server_sids";
#else
// ShmOptions::allowed_server_uids, as decimal uids joined by commas.
constexpr char kArgAllowedServerUids[] = "grpc_shm.allowed_server_uids";
#endif

grpc_core::ChannelArgs AddOptionsToArgs(const ShmOptions& options, grpc_core::ChannelArgs args);
ipc::ConnectionOptions ConnectionOptionsFromArgs(const grpc_core::ChannelArgs& args);
#ifdef _WIN32
// ShmOptions::allowed_server_sids of the channel whose args these are.
std::vector<std::string> AllowedServerSidsFromArgs(const grpc_core::ChannelArgs& args);
#else
// ShmOptions::allowed_server_uids of the channel whose args these are.
std::vector<uid_t> AllowedServerUidsFromArgs(const grpc_core::ChannelArgs& args);
#endif
// The IPC options for a ShmOptions (server side).
ipc::ConnectionOptions ToConnectionOptions(const ShmOptions& options);
// Power of two in the IPC core's bounds, at least `bytes`.
uint32_t NormalizeRingBytes(uint64_t bytes);

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_OPTIONS_ARGS_H_
