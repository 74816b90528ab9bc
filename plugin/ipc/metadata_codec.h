// Encoding of a metadata block (the payload of kFrameInitialMetadata and
// kFrameTrailingMetadata): keys and values as raw bytes, so "-bin" values
// travel unchanged.
//
//   u32 count, then `count` times: u32 key_size, u32 value_size, key, value
//
// All integers little-endian. The decoder trusts nothing: every size is
// checked against what is left of the block before it is used.
#ifndef GRPC_SHM_IPC_METADATA_CODEC_H_
#define GRPC_SHM_IPC_METADATA_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plugin/ipc/status.h"

namespace grpc_shm {
namespace ipc {

using MetadataEntry = std::pair<std::string, std::string>;

class MetadataEncoder {
 public:
  void Add(const char* key, size_t key_size, const char* value, size_t value_size);
  void Add(const std::string& key, const std::string& value) {
    Add(key.data(), key.size(), value.data(), value.size());
  }
  // The encoded block; the count is patched in when it is taken.
  std::string Finish();

 private:
  void PutU32(uint32_t v);
  std::string out_ = std::string(4, '\0');
  uint32_t count_ = 0;
};

// Limits that keep a hostile block from costing unbounded memory.
constexpr uint32_t kMaxMetadataEntries = 4096;

Status DecodeMetadata(const uint8_t* data, size_t size, std::vector<MetadataEntry>* entries);

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_METADATA_CODEC_H_
