// The SPSC ring (plugin/ipc/ring.h) with a hostile peer on the other side.
//
// One ring in private memory (its data area allocated to exactly its
// capacity, so ASan sees any access past it), an honest RingWriter and an
// honest RingReader, and a fuzzer-chosen sequence of operations that mixes
// honest traffic with what a hostile peer can do to shared memory: scribble
// over the data area, forge a record header (seal, length, type) where the
// reader looks next, publish any read position to the writer.
//
// Invariants:
// - always: no access outside the ring, payload spans lie inside the data
//   area and add up to the header's length, which is at most the largest
//   frame; once a side reports kCorrupt it is not used again (as the
//   transport does);
// - while no hostile operation has happened: nothing is reported corrupt,
//   the reader sees exactly the frames written, in order, with their bytes,
//   and Fits() agrees with Reserve().
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "plugin/ipc/ring.h"

namespace {

using namespace grpc_shm::ipc;  // NOLINT: a fuzzer of this one namespace

struct Written {
  uint32_t stream_id;
  uint8_t type;
  std::string payload;
};

bool InData(const uint8_t* base, uint32_t capacity, const void* p, size_t n) {
  const uint8_t* q = static_cast<const uint8_t*>(p);
  return n == 0 || (q >= base && q + n <= base + capacity);
}

class RingHarness {
 public:
  RingHarness(FuzzedDataProvider* in, uint32_t capacity)
      : in_(*in),
        capacity_(capacity),
        control_(new RingControl()),
        data_(new uint8_t[capacity]()),
        writer_(control_.get(), data_.get(), capacity),
        reader_(control_.get(), data_.get(), capacity) {
    control_->read_pos.store(0);
  }

  void Run() {
    while (in_.remaining_bytes() > 0) {
      switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
        case 2:
          HonestWrite();
          break;
        case 3:
        case 4:
          HonestRead();
          break;
        case 5:
          Scribble();
          break;
        case 6:
          ForgeHeader();
          break;
        case 7:
          PublishReadPosition();
          break;
        case 8:
          ReserveAndAbandon();
          break;
        case 9:
          Query();
          break;
      }
    }
    // Drain what is left: honest frames must all come out.
    while (!reader_dead_ && HonestRead()) {
    }
    if (!tainted_) FUZZ_CHECK(expected_.empty(), "%zu frames never read", expected_.size());
  }

 private:
  size_t MaxPayload() const { return RingWriter::MaxFramePayload(capacity_); }

  void HonestWrite() {
    if (writer_dead_) return;
    // Mostly small frames; sometimes up to the largest, to wrap and fill.
    size_t size = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<size_t>(0, 80)
                                    : in_.ConsumeIntegralInRange<size_t>(0, MaxPayload() + 32);
    Written w;
    w.stream_id = in_.ConsumeIntegral<uint32_t>();
    w.type = in_.ConsumeIntegral<uint8_t>();
    w.payload.resize(size);
    for (size_t i = 0; i < size; ++i) w.payload[i] = static_cast<char>(serial_ * 31 + i * 7);
    ++serial_;
    bool fits = false;
    Status fit_status = writer_.Fits(size, &fits);
    FrameHeader header{};
    header.stream_id = w.stream_id;
    header.type = w.type;
    header.payload_size = 0xdeadbeef;  // ignored by the writer
    ConstByteSpan part{reinterpret_cast<const uint8_t*>(w.payload.data()), size};
    Status s;
    if (in_.ConsumeBool()) {
      s = writer_.TryWrite(header, &part, 1);
    } else {
      MutableByteSpan spans[2];
      s = writer_.Reserve(size, spans);
      if (s.ok()) {
        CheckSpans(spans, size);
        if (spans[0].size) std::memcpy(spans[0].data, w.payload.data(), spans[0].size);
        if (spans[1].size)
          std::memcpy(spans[1].data, w.payload.data() + spans[0].size, spans[1].size);
        writer_.Commit(header);
      }
    }
    if (size > MaxPayload()) {
      FUZZ_CHECK(s.code() == StatusCode::kInvalidArgument, "oversized frame: %s",
                 s.ToString().c_str());
      return;
    }
    if (s.code() == StatusCode::kCorrupt) {
      FUZZ_CHECK(tainted_, "honest ring reported corrupt: %s", s.ToString().c_str());
      writer_dead_ = true;
      return;
    }
    FUZZ_CHECK(s.ok() || s.code() == StatusCode::kWouldBlock, "%s", s.ToString().c_str());
    if (!tainted_ && fit_status.ok()) {
      FUZZ_CHECK(fits == s.ok(), "Fits said %d for %zu bytes, write said %s", fits, size,
                 s.ToString().c_str());
    }
    if (s.ok()) expected_.push_back(std::move(w));
  }

  void CheckSpans(const MutableByteSpan spans[2], size_t size) {
    FUZZ_CHECK(spans[0].size + spans[1].size == size, "spans %zu+%zu for %zu", spans[0].size,
               spans[1].size, size);
    FUZZ_CHECK(InData(data_.get(), capacity_, spans[0].data, spans[0].size) &&
                   InData(data_.get(), capacity_, spans[1].data, spans[1].size),
               "reservation outside the ring");
  }

  // Returns whether a frame was read.
  bool HonestRead() {
    if (reader_dead_) return false;
    FrameView frame;
    Status s = reader_.Peek(&frame);
    if (s.code() == StatusCode::kWouldBlock) {
      if (!tainted_) FUZZ_CHECK(expected_.empty(), "%zu written frames not seen", expected_.size());
      return false;
    }
    if (s.code() == StatusCode::kCorrupt) {
      FUZZ_CHECK(tainted_, "honest ring reported corrupt: %s", s.ToString().c_str());
      reader_dead_ = true;
      return false;
    }
    FUZZ_CHECK(s.ok(), "%s", s.ToString().c_str());
    const size_t size = frame.payload_size();
    FUZZ_CHECK(size <= MaxPayload(), "frame of %zu bytes accepted", size);
    FUZZ_CHECK(frame.parts[0].size + frame.parts[1].size == size, "parts do not add up");
    FUZZ_CHECK(InData(data_.get(), capacity_, frame.parts[0].data, frame.parts[0].size) &&
                   InData(data_.get(), capacity_, frame.parts[1].data, frame.parts[1].size),
               "payload outside the ring");
    std::string got(size, '\0');
    frame.CopyPayloadTo(reinterpret_cast<uint8_t*>(&got[0]));
    if (!tainted_) {
      FUZZ_CHECK(!expected_.empty(), "frame read that was never written");
      const Written& w = expected_.front();
      FUZZ_CHECK(
          frame.header.stream_id == w.stream_id && frame.header.type == w.type && got == w.payload,
          "frame differs from the one written (%zu vs %zu bytes)", size, w.payload.size());
      expected_.pop_front();
    }
    const size_t freed = reader_.Consume();
    FUZZ_CHECK(freed == FrameRecordSize(size), "consumed %zu for a %zu-byte frame", freed, size);
    reader_pos_ += freed;
    return true;
  }

  void Scribble() {
    tainted_ = true;
    const uint32_t offset = in_.ConsumeIntegralInRange<uint32_t>(0, capacity_ - 1);
    std::string bytes = in_.ConsumeRandomLengthString(64);
    const size_t n = std::min<size_t>(bytes.size(), capacity_ - offset);
    std::memcpy(data_.get() + offset, bytes.data(), n);
  }

  // A header where the reader (or the record after it) will look, with a
  // seal that is right, zero or anything, and any length.
  void ForgeHeader() {
    tainted_ = true;
    const uint64_t pos = reader_pos_ + kFrameAlignment * in_.ConsumeIntegralInRange(0, 3);
    FrameHeader h{};
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
        h.payload_size = in_.ConsumeIntegral<uint32_t>();
        break;
      case 1:
        h.payload_size = static_cast<uint32_t>(MaxPayload() - in_.ConsumeIntegralInRange(-2, 2));
        break;
      default:
        h.payload_size = in_.ConsumeIntegralInRange<uint32_t>(0, capacity_);
        break;
    }
    h.stream_id = in_.ConsumeIntegral<uint32_t>();
    h.type = in_.ConsumeIntegral<uint8_t>();
    h.flags = in_.ConsumeIntegral<uint8_t>();
    h.aux = in_.ConsumeIntegral<uint32_t>();
    h.seal = in_.ConsumeBool() ? FrameSeal(pos) : in_.ConsumeIntegral<uint16_t>();
    std::memcpy(data_.get() + (pos & (capacity_ - 1)), &h, sizeof(h));
  }

  void PublishReadPosition() {
    tainted_ = true;
    const uint64_t w = writer_.write_pos();
    uint64_t pos;
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
        pos = w - kFrameAlignment * in_.ConsumeIntegralInRange<uint64_t>(0, capacity_ / 8);
        break;
      case 1:
        pos = w + in_.ConsumeIntegralInRange<uint64_t>(0, 64);
        break;
      case 2:
        pos = w - in_.ConsumeIntegralInRange<uint64_t>(0, capacity_ + 64);
        break;
      default:
        pos = in_.ConsumeIntegral<uint64_t>();
        break;
    }
    control_->read_pos.store(pos);
  }

  // A reservation that is never committed, then overwritten by the next one:
  // nothing may be published by it.
  void ReserveAndAbandon() {
    if (writer_dead_) return;
    MutableByteSpan spans[2];
    const size_t size = in_.ConsumeIntegralInRange<size_t>(0, MaxPayload());
    Status s = writer_.Reserve(size, spans);
    if (s.ok()) {
      CheckSpans(spans, size);
      // Garbage in the payload: without a seal, the reader must not see it.
      if (spans[0].size) std::memset(spans[0].data, 0xff, spans[0].size);
      if (spans[1].size) std::memset(spans[1].data, 0xff, spans[1].size);
    } else if (s.code() == StatusCode::kCorrupt) {
      FUZZ_CHECK(tainted_, "honest ring reported corrupt: %s", s.ToString().c_str());
      writer_dead_ = true;
    }
  }

  void Query() {
    if (writer_dead_) return;
    size_t writable = 0;
    Status s = writer_.WritableBytes(&writable);
    if (s.code() == StatusCode::kCorrupt) {
      FUZZ_CHECK(tainted_, "honest ring reported corrupt: %s", s.ToString().c_str());
      writer_dead_ = true;
      return;
    }
    FUZZ_CHECK(s.ok(), "%s", s.ToString().c_str());
    FUZZ_CHECK(writable <= MaxPayload(), "writable %zu", writable);
    // (0 also means "not even a header fits", so only a positive answer is
    // checked: that much fits, one byte more does not.)
    if (!tainted_ && writable > 0) {
      bool fits = false;
      FUZZ_CHECK(writer_.Fits(writable, &fits).ok() && fits, "WritableBytes %zu does not fit",
                 writable);
      FUZZ_CHECK(writer_.Fits(writable + 1, &fits).ok() && !fits,
                 "WritableBytes %zu, but one byte more fits too", writable);
    }
  }

  FuzzedDataProvider& in_;
  const uint32_t capacity_;
  std::unique_ptr<RingControl> control_;
  std::unique_ptr<uint8_t[]> data_;
  RingWriter writer_;
  RingReader reader_;
  std::deque<Written> expected_;
  uint64_t serial_ = 0;
  uint64_t reader_pos_ = 0;  // where the reader looks next
  bool tainted_ = false;
  bool reader_dead_ = false;
  bool writer_dead_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint32_t capacity = kMinRingBytes << in.ConsumeIntegralInRange(0, 2);
  RingHarness(&in, capacity).Run();
  return 0;
}
