#include "plugin/ipc/metadata_codec.h"

#include <gtest/gtest.h>

namespace grpc_shm {
namespace ipc {
namespace {

TEST(MetadataCodecTest, RoundTripsTextBinaryAndEmptyValues) {
  MetadataEncoder enc;
  const std::string binary("\0\1\2\xff", 4);
  enc.Add("content-type", "application/grpc");
  enc.Add("trace-bin", binary);
  enc.Add("empty", "");
  enc.Add("big", std::string(100000, 'x'));
  const std::string block = enc.Finish();
  std::vector<MetadataEntry> entries;
  ASSERT_TRUE(
      DecodeMetadata(reinterpret_cast<const uint8_t*>(block.data()), block.size(), &entries).ok());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0], MetadataEntry("content-type", "application/grpc"));
  EXPECT_EQ(entries[1], MetadataEntry("trace-bin", binary));
  EXPECT_EQ(entries[2], MetadataEntry("empty", ""));
  EXPECT_EQ(entries[3].second.size(), 100000u);
}

TEST(MetadataCodecTest, EmptyBlock) {
  MetadataEncoder enc;
  const std::string block = enc.Finish();
  std::vector<MetadataEntry> entries;
  ASSERT_TRUE(
      DecodeMetadata(reinterpret_cast<const uint8_t*>(block.data()), block.size(), &entries).ok());
  EXPECT_TRUE(entries.empty());
}

TEST(MetadataCodecTest, EveryTruncationIsRejected) {
  MetadataEncoder enc;
  enc.Add("a", "b");
  enc.Add("key", "value");
  const std::string block = enc.Finish();
  for (size_t len = 0; len < block.size(); ++len) {
    std::vector<MetadataEntry> entries;
    Status s = DecodeMetadata(reinterpret_cast<const uint8_t*>(block.data()), len, &entries);
    EXPECT_EQ(s.code(), StatusCode::kProtocol) << "length " << len;
  }
}

TEST(MetadataCodecTest, HostileSizesAreRejected) {
  // count = 1, key_size = 0xffffffff: must not overflow into a small read.
  const uint8_t evil[] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 'k'};
  std::vector<MetadataEntry> entries;
  EXPECT_EQ(DecodeMetadata(evil, sizeof(evil), &entries).code(), StatusCode::kProtocol);
  const uint8_t many[] = {0xff, 0xff, 0xff, 0x7f};
  EXPECT_EQ(DecodeMetadata(many, sizeof(many), &entries).code(), StatusCode::kProtocol);
  const uint8_t trailing[] = {0, 0, 0, 0, 'x'};
  EXPECT_EQ(DecodeMetadata(trailing, sizeof(trailing), &entries).code(), StatusCode::kProtocol);
  const uint8_t empty_key[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(DecodeMetadata(empty_key, sizeof(empty_key), &entries).code(), StatusCode::kProtocol);
}

}  // namespace
}  // namespace ipc
}  // namespace grpc_shm
