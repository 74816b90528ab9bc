// Metadata blocks (plugin/ipc/metadata_codec.h), the first thing the
// transport decodes from a peer's initial and trailing metadata frames.
//
// 1. The input as a block: decoding must never read outside it, and a block
//    it accepts must encode back to exactly the same bytes (the format has
//    one encoding per list, so anything else means the decoder skipped or
//    invented bytes).
// 2. The input as a list of entries: encoding then decoding gives the list
//    back, and every strict prefix of the encoding is refused.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "plugin/ipc/metadata_codec.h"

namespace {

using grpc_shm::ipc::DecodeMetadata;
using grpc_shm::ipc::kMaxMetadataEntries;
using grpc_shm::ipc::MetadataEncoder;
using grpc_shm::ipc::MetadataEntry;
using grpc_shm::ipc::Status;
using grpc_shm::ipc::StatusCode;

std::string Encode(const std::vector<MetadataEntry>& entries) {
  MetadataEncoder encoder;
  for (const auto& e : entries) encoder.Add(e.first, e.second);
  return encoder.Finish();
}

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void DecodeAsBlock(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan sees any read past the block.
  std::vector<uint8_t> block(data, data + size);
  std::vector<MetadataEntry> entries;
  Status s = DecodeMetadata(block.data(), block.size(), &entries);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == StatusCode::kProtocol, "%s", s.ToString().c_str());
    return;
  }
  FUZZ_CHECK(entries.size() <= kMaxMetadataEntries, "%zu entries", entries.size());
  for (const auto& e : entries) FUZZ_CHECK(!e.first.empty(), "empty key accepted");
  const std::string again = Encode(entries);
  FUZZ_CHECK(again.size() == size && std::memcmp(again.data(), data, size) == 0,
             "accepted block of %zu bytes re-encodes to %zu different bytes", size, again.size());
}

void RoundTrip(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<MetadataEntry> entries;
  while (in.remaining_bytes() > 0 && entries.size() < 64) {
    std::string key = in.ConsumeRandomLengthString(64);
    if (key.empty()) key = "k";
    entries.emplace_back(std::move(key), in.ConsumeRandomLengthString(512));
  }
  const std::string block = Encode(entries);
  std::vector<MetadataEntry> decoded;
  Status s = DecodeMetadata(Bytes(block), block.size(), &decoded);
  FUZZ_CHECK(s.ok(), "%s", s.ToString().c_str());
  FUZZ_CHECK(decoded == entries, "round trip changed %zu entries", entries.size());
  // Every entry's bytes are needed: a shorter block must be refused. (Not
  // every prefix: that is quadratic; the first and the last few are where
  // off-by-ones live.)
  for (size_t cut = 0; cut < block.size(); ++cut) {
    if (cut > 16 && cut + 16 < block.size()) continue;
    std::vector<uint8_t> prefix(block.begin(), block.begin() + cut);
    FUZZ_CHECK(!DecodeMetadata(prefix.data(), prefix.size(), &decoded).ok(),
               "prefix of %zu/%zu bytes accepted", cut, block.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeAsBlock(data, size);
  RoundTrip(data, size);
  return 0;
}
