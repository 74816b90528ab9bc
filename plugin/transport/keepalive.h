// Keepalive pings, configured as for gRPC's HTTP/2 transport:
// GRPC_ARG_KEEPALIVE_TIME_MS (client: off, server: 2 hours),
// GRPC_ARG_KEEPALIVE_TIMEOUT_MS (20 s) and
// GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS (off: ping only while calls run).
//
// A peer that dies is seen at once through its socket. One that is alive
// and stuck (stopped, deadlocked, its poller starved) is not: its calls
// would wait for their deadlines, or forever. With keepalive on, a ping it
// leaves unanswered for the timeout closes the connection with UNAVAILABLE
// ("keepalive watchdog timeout", as chttp2 says), failing those calls.
//
// The pings bypass the rings (ipc::KeepaliveWords): a peer whose reading is
// paused because its application has not taken its messages yet is alive
// and answers; a ping queued behind those messages would look like a dead
// peer. They cost the peer a wake-up each and are not counted as ping
// strikes (GRPC_ARG_HTTP2_MAX_PING_STRIKES limits the ping frames a peer
// writes into the ring, which it answers there).
#ifndef GRPC_SHM_TRANSPORT_KEEPALIVE_H_
#define GRPC_SHM_TRANSPORT_KEEPALIVE_H_

#include <cstdint>

#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/time.h"

namespace grpc_shm {
namespace transport {

struct KeepaliveConfig {
  grpc_core::Duration time = grpc_core::Duration::Infinity();  // infinity: off
  grpc_core::Duration timeout = grpc_core::Duration::Seconds(20);
  bool permit_without_calls = false;

  bool enabled() const { return time != grpc_core::Duration::Infinity(); }
  static KeepaliveConfig FromChannelArgs(const grpc_core::ChannelArgs& args, bool is_client);
};

// The peer's pings this process has answered, over every connection: a
// poller calls NoteKeepalivePingAnswered. For tests.
void NoteKeepalivePingAnswered();
uint64_t KeepalivePingsAnswered();

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_KEEPALIVE_H_
