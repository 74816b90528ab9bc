#include "bench/ipc/ring_round_trip.h"

#include <algorithm>
#include <vector>

#include "bench/ipc/ping_protocols.h"
#include "plugin/ipc/frame_format.h"

namespace grpc_shm::bench {

namespace {

// The pre-touch bulk message travels on its own stream, so the echoing side
// tells it from the timed 64-byte messages.
constexpr uint32_t kPretouchStream = 2;

// Reads the rest of a message whose first frame is in `f`; returns its size.
size_t DrainMessage(ipc::Connection& c, ipc::FrameView* f, const char* what) {
  size_t total = 0;
  for (;;) {
    total += f->payload_size();
    const bool more = f->header.flags & ipc::kFlagMoreChunks;
    c.Consume();
    if (!more) return total;
    Check(c.ReadFrame(f), what);
  }
}

// Timing side: one ring's worth of bulk data there and back.
void PretouchRings(ipc::Connection& c, ipc::FrameView* f) {
  std::vector<uint8_t> bulk(c.send_ring_bytes(), 0x11);
  Check(c.WriteMessage(kPretouchStream, 0, bulk.data(), bulk.size()), "pretouch send");
  Check(c.ReadFrame(f), "pretouch recv");
  if (DrainMessage(c, f, "pretouch recv") != bulk.size()) Die("pretouch: bad echo size");
}

// Echoing side: echoes 64-byte messages, and bulk messages by their size,
// until anything but a message arrives.
void EchoUntilStop(ipc::Connection& c) {
  alignas(64) uint8_t buf[64];
  std::vector<uint8_t> bulk;
  ipc::FrameView f;
  for (;;) {
    Check(c.ReadFrame(&f), "echo recv");
    if (f.header.type != ipc::kFrameMessage) {
      c.Consume();
      return;
    }
    if (f.header.stream_id == kPretouchStream) {
      bulk.assign(DrainMessage(c, &f, "pretouch recv"), 0x22);
      Check(c.WriteMessage(kPretouchStream, 0, bulk.data(), bulk.size()), "pretouch echo");
      continue;
    }
    RingEcho(c, f, buf);
  }
}

}  // namespace

Samples RingRoundTrip(Harness& harness, const ipc::ConnectionOptions& options,
                      const RoundTripBudget& budget, bool pretouch) {
  Samples lat;
  harness.ConnectedRun(
      options,
      [&](ipc::Connection& c) {
        PingBuffers buffers;
        ipc::FrameView f;
        if (pretouch) PretouchRings(c, &f);
        uint64_t seq = 0;
        auto round_trip = [&] { RingPing(c, seq++, buffers.msg, buffers.in, &f); };
        if (pretouch) {
          lat = DriveRoundTrips(budget, round_trip);
        } else {
          // Exactly the first lap of the smaller ring: no warm-up at all.
          RoundTripBudget cold = budget;
          cold.warmup = 0;
          const long lap = static_cast<long>(std::min(c.send_ring_bytes(), c.receive_ring_bytes()) /
                                             ipc::FrameRecordSize(sizeof(buffers.msg)));
          lat = DriveRoundTrips(cold, round_trip, lap);
        }
        ipc::FrameHeader stop{};
        stop.type = ipc::kFrameGoaway;
        Check(c.WriteFrame(stop, nullptr, 0), "rt stop");
      },
      [&](ipc::Connection& c) { EchoUntilStop(c); });
  return lat;
}

}  // namespace grpc_shm::bench
