// Every bound a peer can push against, in one place: its default, the gRPC
// channel arg that changes it (the one a gRPC user already knows from
// chttp2, where there is one), and where it is enforced. A peer that breaks
// one of these costs a status for that stream or that connection only.
//
// stream window (flow control): 4 MiB, fixed (kStreamWindow);
//     inbound.cc and outbound_queue.cc.
// message size on receive: 4 MiB, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH
//     (-1: none); inbound.cc, on every chunk.
// metadata block size: 8 KiB, GRPC_ARG_MAX_METADATA_SIZE; inbound.cc,
//     before the block is copied.
// concurrent streams (server): 4096, GRPC_ARG_MAX_CONCURRENT_STREAMS;
//     inbound.cc, when a stream opens.
// received bytes awaiting gRPC: 64 MiB, grpc_shm.max_inbound_bytes;
//     inbound.cc (reading pauses).
// frames we must answer, queued: 10000, fixed (chttp2's
//     DEFAULT_MAX_PENDING_INDUCED_FRAMES); inbound.cc (reading pauses).
// pings without data: 2 strikes per 5 min, GRPC_ARG_HTTP2_MAX_PING_STRIKES
//     and GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; inbound.cc
//     (goaway).
// streams reset or refused: bursts of 1000, 1000 per second,
//     grpc_shm.max_resets_per_second; inbound.cc (goaway).
// frames read per wake-up: 256, fixed (kReadBudgetFrames); shm_transport.cc.
#ifndef GRPC_SHM_TRANSPORT_LIMITS_H_
#define GRPC_SHM_TRANSPORT_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "src/core/lib/channel/channel_args.h"

namespace grpc_shm {
namespace transport {

// Flow control, shared by sender and receiver (both must agree on it).
// Every stream starts with this window in each direction; the receiver
// gives window back as gRPC takes messages, in steps of a quarter of it.
constexpr int64_t kStreamWindow = 4 << 20;
// What a message costs its stream's window (and the connection's buffer)
// beyond its bytes, so that empty messages are not free: each one is a
// queue entry at the receiver of about this size (an InboundMessage, with a
// SliceBuffer's inline slice array, in a deque).
constexpr int64_t kMessageOverhead = 320;
constexpr int64_t MessageCharge(size_t bytes) {
  return static_cast<int64_t>(bytes) + kMessageOverhead;
}

// Frames handled per wake-up of one connection before the polling thread
// turns to other connections (the connection is kicked to go on later).
constexpr int kReadBudgetFrames = 256;
// Frames the peer made us owe (ping acks, resets of refused streams) that
// may wait for ring space before we stop reading what it sends.
constexpr size_t kMaxPendingInducedFrames = 10000;

// Longest status message a reset frame carries (longer ones are cut on
// send, refused on receive).
constexpr size_t kMaxResetMessageBytes = 4096;

constexpr char kArgMaxInboundBytes[] = "grpc_shm.max_inbound_bytes";
constexpr char kArgMaxResetsPerSecond[] = "grpc_shm.max_resets_per_second";

struct TransportLimits {
  // Largest message accepted, checked on every chunk; 0: no limit.
  size_t max_receive_message_bytes = 4u << 20;
  // Largest metadata block, counted as HTTP/2 does (key + value + 32).
  uint32_t max_metadata_size = 8 * 1024;
  // Streams the peer may have open at once (announced to a client).
  uint32_t max_concurrent_streams = 4096;
  // Complete received messages waiting for gRPC; above it reading pauses.
  size_t max_inbound_bytes = 64u << 20;
  int max_ping_strikes = 2;
  int64_t min_ping_interval_without_data_ms = 5 * 60 * 1000;
  // Token bucket for streams the peer resets or we refuse ("rapid reset").
  int max_resets_per_second = 1000;

  static TransportLimits FromChannelArgs(const grpc_core::ChannelArgs& args);
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_LIMITS_H_
