#include "plugin/ipc/metadata_codec.h"

#include <cstring>

namespace grpc_shm {
namespace ipc {
namespace {

uint32_t LoadU32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

void MetadataEncoder::PutU32(uint32_t v) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  out_.append(b, 4);
}

void MetadataEncoder::Add(const char* key, size_t key_size, const char* value, size_t value_size) {
  PutU32(static_cast<uint32_t>(key_size));
  PutU32(static_cast<uint32_t>(value_size));
  out_.append(key, key_size);
  out_.append(value, value_size);
  ++count_;
}

std::string MetadataEncoder::Finish() {
  for (int i = 0; i < 4; ++i) out_[i] = static_cast<char>(count_ >> (8 * i));
  std::string result = std::move(out_);
  out_.assign(4, '\0');
  count_ = 0;
  return result;
}

Status DecodeMetadata(const uint8_t* data, size_t size, std::vector<MetadataEntry>* entries) {
  entries->clear();
  if (size < 4) return Status(StatusCode::kProtocol, "metadata block shorter than its count");
  const uint32_t count = LoadU32(data);
  if (count > kMaxMetadataEntries) {
    return Status(StatusCode::kProtocol,
                  "metadata block claims " + std::to_string(count) + " entries");
  }
  size_t pos = 4;
  for (uint32_t i = 0; i < count; ++i) {
    if (size - pos < 8) return Status(StatusCode::kProtocol, "metadata entry header truncated");
    const uint32_t key_size = LoadU32(data + pos);
    const uint32_t value_size = LoadU32(data + pos + 4);
    pos += 8;
    // Compare against what is left, one size at a time, so the sum cannot
    // overflow.
    if (key_size > size - pos || value_size > size - pos - key_size) {
      return Status(StatusCode::kProtocol, "metadata entry larger than its block");
    }
    if (key_size == 0) return Status(StatusCode::kProtocol, "metadata entry with empty key");
    entries->emplace_back(
        std::string(reinterpret_cast<const char*>(data + pos), key_size),
        std::string(reinterpret_cast<const char*>(data + pos + key_size), value_size));
    pos += size_t{key_size} + value_size;
  }
  if (pos != size) return Status(StatusCode::kProtocol, "trailing bytes after metadata block");
  return Status::Ok();
}

}  // namespace ipc
}  // namespace grpc_shm
