// The on-ring frame layout and its constants. Everything that writes or reads
// frames (ring.h, connection.h, the transport) agrees on this header alone.
//
// A ring carries records: a 16-byte FrameHeader followed by `payload_size`
// bytes, padded to a 16-byte boundary, so a header never straddles a cache
// line or the end of the ring. A payload may wrap around the end of the ring;
// the writer and reader split their copies at the wrap point. The header's
// seal is what publishes a record (see ring.h).
// A message larger than one frame is sent as several kMessage frames of the
// same stream, all but the last with kFlagMoreChunks set; a sender finishes
// one message before it starts the next, so chunks of two messages never
// interleave (other frames may come between chunks).
#ifndef GRPC_SHM_IPC_FRAME_FORMAT_H_
#define GRPC_SHM_IPC_FRAME_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace grpc_shm {
namespace ipc {

struct FrameHeader {
  uint32_t payload_size;
  uint32_t stream_id;
  uint8_t type;   // FrameType; the ring does not interpret it
  uint8_t flags;  // FrameFlags
  uint16_t seal;  // written by RingWriter last; callers leave it 0
  uint32_t aux;   // per-type argument (e.g. status code of kReset)
};
static_assert(sizeof(FrameHeader) == 16, "FrameHeader is part of the wire format");

constexpr size_t kFrameHeaderSize = sizeof(FrameHeader);
constexpr size_t kFrameAlignment = 16;
constexpr size_t kFrameSealOffset = 10;  // offsetof(FrameHeader, seal)

enum FrameType : uint8_t {
  kFrameInitialMetadata = 1,   // payload: metadata block (metadata_codec.h)
  kFrameMessage = 2,           // payload: message bytes (or one chunk of them); aux = the
                               // whole message's length (0: not given)
  kFrameTrailingMetadata = 3,  // payload: metadata block; ends the sender's side
  kFrameReset = 4,             // cancel the stream; aux = status code, payload = message
  kFrameGoaway = 5,            // no new streams; aux = last accepted stream id
  kFramePing = 6,              // aux = opaque id, answered with kFramePingAck
  kFramePingAck = 7,
  kFrameWindowUpdate = 8,  // the receiver took aux more message bytes of the stream
  kFrameSettings = 9,      // the server's first frame; aux = max concurrent streams
  kFrameTypeMax = kFrameSettings,
};

enum FrameFlags : uint8_t {
  kFlagMoreChunks = 1 << 0,     // kFrameMessage: more chunks of this message follow
  kFlagCompressed = 1 << 1,     // kFrameMessage: message is compressed (gRPC flag)
  kFlagEndOfStream = 1 << 2,    // sender half-closes after this frame
  kFlagRefusedStream = 1 << 3,  // kFrameReset: the server refused the stream unseen
};

constexpr size_t AlignFrame(size_t n) { return (n + kFrameAlignment - 1) & ~(kFrameAlignment - 1); }

// Bytes a frame with `payload_size` bytes of payload occupies in the ring.
constexpr size_t FrameRecordSize(size_t payload_size) {
  return kFrameHeaderSize + AlignFrame(payload_size);
}

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_FRAME_FORMAT_H_
