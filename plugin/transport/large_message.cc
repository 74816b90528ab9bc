#include "plugin/transport/large_message.h"

#include <grpc/slice.h>

#include "plugin/platform/platform.h"
#include "plugin/transport/tsan_handoff.h"

namespace grpc_shm {
namespace transport {
namespace {

struct Mapping {
  void* data;
  size_t capacity;
};

void ReleaseMapping(void* arg) {
  TakeOver(arg);  // gRPC's slice refcount carried it to this thread
  auto* mapping = static_cast<Mapping*>(arg);
  platform::UnmapLargeBuffer(mapping->data, mapping->capacity);
  delete mapping;
}

}  // namespace

std::unique_ptr<LargeMessageBuffer> LargeMessageBuffer::Create(size_t capacity) {
  void* data = platform::MapLargeBuffer(capacity);
  if (data == nullptr) return nullptr;
  return std::unique_ptr<LargeMessageBuffer>(
      new LargeMessageBuffer(static_cast<uint8_t*>(data), capacity));
}

LargeMessageBuffer::~LargeMessageBuffer() { platform::UnmapLargeBuffer(data_, capacity_); }

bool LargeMessageBuffer::Append(const ipc::FrameView& frame) {
  const size_t n = frame.payload_size();
  if (data_ == nullptr || n > capacity_ - size_) return false;
  frame.CopyPayloadTo(data_ + size_);
  size_ += n;
  return true;
}

grpc_core::Slice LargeMessageBuffer::TakeSlice() {
  auto* mapping = new Mapping{data_, capacity_};
  HandOff(mapping);
  grpc_slice slice = grpc_slice_new_with_user_data(data_, size_, ReleaseMapping, mapping);
  data_ = nullptr;  // the slice owns it now
  capacity_ = 0;
  size_ = 0;
  return grpc_core::Slice(slice);
}

}  // namespace transport
}  // namespace grpc_shm
