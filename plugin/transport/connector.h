// Client side: the ClientChannelFactory our channels carry, whose subchannels
// connect with ShmConnector. Being a full client channel gives us connect on
// demand, reconnect with backoff, connectivity state and wait-for-ready.
#ifndef GRPC_SHM_TRANSPORT_CONNECTOR_H_
#define GRPC_SHM_TRANSPORT_CONNECTOR_H_

#include "src/core/ext/filters/client_channel/client_channel_factory.h"

namespace grpc_shm {
namespace transport {

// Process-wide, never destroyed (channels hold raw pointers to it).
grpc_core::ClientChannelFactory* ShmClientChannelFactory();

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_CONNECTOR_H_
