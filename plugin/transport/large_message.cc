#include "plugin/transport/large_message.h"

#include <grpc/slice.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "plugin/platform/platform.h"
#include "plugin/transport/tsan_handoff.h"

namespace grpc_shm {
namespace transport {
namespace {

// Released large buffers, best fit first out. Buffers keep their pages: a
// reused one holds the bytes of an earlier message, of which only what the
// new message writes is ever handed out.
class BufferPool {
 public:
  static BufferPool& Get() {
    static auto* pool = new BufferPool();
    return *pool;
  }

  // A pooled buffer of at least `capacity` bytes (the smallest), or nullptr.
  void* Take(size_t capacity, size_t* got) {
    std::lock_guard<std::mutex> lock(mu_);
    auto best = buffers_.end();
    for (auto it = buffers_.begin(); it != buffers_.end(); ++it) {
      if (it->capacity >= capacity && (best == buffers_.end() || it->capacity < best->capacity)) {
        best = it;
      }
    }
    if (best == buffers_.end()) return nullptr;
    void* data = best->data;
    *got = best->capacity;
    bytes_ -= best->capacity;
    buffers_.erase(best);
    return data;
  }

  void Give(void* data, size_t capacity) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (buffers_.size() < kPooledLargeBuffers && capacity <= kPooledLargeBytes - bytes_) {
        buffers_.push_back({data, capacity});
        bytes_ += capacity;
        return;
      }
    }
    platform::UnmapLargeBuffer(data, capacity);
  }

  void ReleaseAll() {
    std::vector<Buffer> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      released.swap(buffers_);
      bytes_ = 0;
    }
    for (const Buffer& b : released) platform::UnmapLargeBuffer(b.data, b.capacity);
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return buffers_.size();
  }

 private:
  struct Buffer {
    void* data;
    size_t capacity;
  };
  std::mutex mu_;
  std::vector<Buffer> buffers_;
  size_t bytes_ = 0;
};

// Bumped by every ReleasePooledLargeBuffers: a buffer handed to gRPC before
// a release is unmapped when gRPC lets it go, not pooled, so a release also
// covers the messages still in handlers' hands (a connection that closes
// must not leave its messages' memory behind).
std::atomic<uint64_t> g_release_epoch{0};

struct Mapping {
  void* data;
  size_t capacity;
  uint64_t epoch;
};

void ReleaseMapping(void* arg) {
  TakeOver(arg);  // gRPC's slice refcount carried it to this thread
  auto* mapping = static_cast<Mapping*>(arg);
  if (mapping->epoch == g_release_epoch.load(std::memory_order_acquire)) {
    BufferPool::Get().Give(mapping->data, mapping->capacity);
  } else {
    platform::UnmapLargeBuffer(mapping->data, mapping->capacity);
  }
  delete mapping;
}

}  // namespace

void ReleasePooledLargeBuffers() {
  g_release_epoch.fetch_add(1, std::memory_order_acq_rel);
  BufferPool::Get().ReleaseAll();
}

size_t PooledLargeBuffers() { return BufferPool::Get().size(); }

std::unique_ptr<LargeMessageBuffer> LargeMessageBuffer::Create(size_t capacity) {
  size_t got = 0;
  void* data = BufferPool::Get().Take(capacity, &got);
  if (data == nullptr) {
    data = platform::MapLargeBuffer(capacity);
    got = capacity;
  }
  if (data == nullptr) return nullptr;
  return std::unique_ptr<LargeMessageBuffer>(
      new LargeMessageBuffer(static_cast<uint8_t*>(data), got, capacity));
}

// An unfinished message (its stream or connection ended) is not pooled: its
// connection is gone or going.
LargeMessageBuffer::~LargeMessageBuffer() { platform::UnmapLargeBuffer(data_, mapped_); }

bool LargeMessageBuffer::Append(const ipc::FrameView& frame) {
  const size_t n = frame.payload_size();
  if (data_ == nullptr || n > capacity_ - size_) return false;
  frame.CopyPayloadTo(data_ + size_);
  size_ += n;
  return true;
}

grpc_core::Slice LargeMessageBuffer::TakeSlice() {
  auto* mapping = new Mapping{data_, mapped_, g_release_epoch.load(std::memory_order_acquire)};
  HandOff(mapping);
  grpc_slice slice = grpc_slice_new_with_user_data(data_, size_, ReleaseMapping, mapping);
  data_ = nullptr;  // the slice owns it now
  mapped_ = 0;
  capacity_ = 0;
  size_ = 0;
  return grpc_core::Slice(slice);
}

}  // namespace transport
}  // namespace grpc_shm
