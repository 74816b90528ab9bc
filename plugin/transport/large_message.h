// A large received message assembled in one buffer of the length its sender
// announced, instead of in one malloc'd slice per chunk. The buffer is mapped
// on demand with huge pages requested (platform::MapLargeBuffer), so a
// 64 MiB message costs a few dozen page faults instead of 16 k, and gRPC gets
// it as a single slice that unmaps the buffer when released.
//
// Buffers come from a small process-wide pool and go back to it when gRPC
// releases the slice: a stream of large messages reuses pages already
// faulted in, where a fresh mapping per message zero-filled every page
// (clear_page and the page faults were a third of the receiver's time at
// 16 MiB). The pool is bounded (kPooledLargeBuffers, kPooledLargeBytes) and
// emptied by ReleasePooledLargeBuffers, which a connection's idle trim and
// every connection's close call.
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

// At most this many released buffers, of at most this many bytes together,
// wait in the pool; others are unmapped at once.
constexpr size_t kPooledLargeBuffers = 4;
constexpr size_t kPooledLargeBytes = size_t{256} << 20;

// Unmaps every pooled buffer; buffers gRPC still holds are unmapped, not
// pooled, when it releases them. Any thread.
void ReleasePooledLargeBuffers();
// What the pool holds now, for tests.
size_t PooledLargeBuffers();

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
  LargeMessageBuffer(uint8_t* data, size_t mapped, size_t capacity)
      : data_(data), mapped_(mapped), capacity_(capacity) {}
  uint8_t* data_;
  size_t mapped_;    // the mapping's length (a pooled one may be longer)
  size_t capacity_;  // the announced length: no more is accepted
  size_t size_ = 0;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_LARGE_MESSAGE_H_
