// A large received message assembled in one buffer of the length its sender
// announced, instead of in one malloc'd slice per chunk. The buffer is mapped
// on demand with huge pages requested (platform::MapLargeBuffer), so a
// 64 MiB message costs a few dozen page faults instead of 16 k, and gRPC gets
// it as a single slice that unmaps the buffer when released.
//
// The announced length is the peer's claim: it is only used once it is within
// the receive size limit, it reserves address space rather than memory (pages
// are committed as data arrives), and a message that runs past it is a
// protocol error.
#ifndef GRPC_SHM_TRANSPORT_LARGE_MESSAGE_H_
#define GRPC_SHM_TRANSPORT_LARGE_MESSAGE_H_

#include <cstddef>
#include <memory>

#include "plugin/ipc/ring.h"
#include "src/core/lib/slice/slice.h"

namespace grpc_shm {
namespace transport {

// Messages announced at least this long are assembled in a LargeMessageBuffer.
constexpr size_t kLargeMessageBytes = 4u << 20;

class LargeMessageBuffer {
 public:
  // nullptr if the memory cannot be mapped (the caller falls back to slices).
  static std::unique_ptr<LargeMessageBuffer> Create(size_t capacity);
  ~LargeMessageBuffer();
  LargeMessageBuffer(const LargeMessageBuffer&) = delete;
  LargeMessageBuffer& operator=(const LargeMessageBuffer&) = delete;

  // Copies the frame's payload after what is already there; false (and
  // nothing copied) if it would run past the announced length.
  bool Append(const ipc::FrameView& frame);
  size_t size() const { return size_; }
  // The message as one slice that owns the mapping; the buffer is spent.
  grpc_core::Slice TakeSlice();

 private:
  LargeMessageBuffer(uint8_t* data, size_t capacity) : data_(data), capacity_(capacity) {}
  uint8_t* data_;
  size_t capacity_;
  size_t size_ = 0;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_LARGE_MESSAGE_H_
