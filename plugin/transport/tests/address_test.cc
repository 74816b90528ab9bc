// The shm address forms (address.h): what each parses to, on every platform,
// and which of them this platform listens on and connects to.
#include "plugin/transport/address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace grpc_shm {
namespace transport {
namespace {

TEST(ShmAddressTest, PathAndAbstractFormsParseToTheIpcForm) {
  auto uri = ParseAnyShmAddress("shm:///tmp/a.sock");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->kind, ShmAddressKind::kPath);
  EXPECT_EQ(uri->ipc_address, "/tmp/a.sock");
  auto bare = ParseAnyShmAddress("shm:/tmp/b.sock");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->ipc_address, "/tmp/b.sock");
  auto abstract = ParseAnyShmAddress("shm:@name");
  ASSERT_TRUE(abstract.ok()) << abstract.status();
  EXPECT_EQ(abstract->kind, ShmAddressKind::kAbstract);
  EXPECT_EQ(abstract->ipc_address, "@name");
}

TEST(ShmAddressTest, PipeFormParsesToThePipeName) {
  auto pipe = ParseAnyShmAddress("shm:pipe:my-service.v1");
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  EXPECT_EQ(pipe->kind, ShmAddressKind::kPipe);
  EXPECT_EQ(pipe->ipc_address, "pipe:my-service.v1");  // \\.\pipe\my-service.v1
  // Slashes, spaces and dots are allowed in a pipe's name; 200 bytes is the bound.
  EXPECT_TRUE(ParseAnyShmAddress("shm:pipe:a/b c").ok());
  EXPECT_TRUE(ParseAnyShmAddress("shm:pipe:" + std::string(200, 'n')).ok());
}

TEST(ShmAddressTest, MalformedAddressesAreRejectedNamingThem) {
  const std::vector<std::string> bad = {
      "unix:/tmp/a.sock",                   // not our scheme
      "shm:relative/path",                  // not absolute
      "shm://relative",                     // authority instead of a path
      "shm:@",                              // empty abstract name
      "shm:/",                              // empty path
      "shm:/" + std::string(200, 'p'),      // longer than sun_path
      "shm:pipe:",                          // empty pipe name
      "shm:pipe:a\\b",                      // backslash in a pipe name
      "shm:pipe:a\x01z",                    // control character
      std::string("shm:pipe:a\0z", 12),     // NUL
      "shm:pipe:" + std::string(201, 'n'),  // longer than Windows allows
  };
  for (const std::string& target : bad) {
    auto parsed = ParseAnyShmAddress(target);
    ASSERT_FALSE(parsed.ok()) << target;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_NE(parsed.status().message().find(target), std::string::npos) << parsed.status();
  }
}

TEST(ShmAddressTest, ThisPlatformTakesOnlyItsOwnForms) {
#ifdef _WIN32
  auto pipe = ParseShmAddress("shm:pipe:svc");
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  EXPECT_EQ(*pipe, "pipe:svc");
  for (const char* other : {"shm:///tmp/a.sock", "shm:@name"}) {
    auto parsed = ParseShmAddress(other);
    ASSERT_FALSE(parsed.ok()) << other;
    EXPECT_NE(parsed.status().message().find("named pipe"), std::string::npos) << parsed.status();
  }
#else
  auto path = ParseShmAddress("shm:///tmp/a.sock");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, "/tmp/a.sock");
  auto abstract = ParseShmAddress("shm:@name");
  ASSERT_TRUE(abstract.ok()) << abstract.status();
  EXPECT_EQ(*abstract, "@name");
  auto pipe = ParseShmAddress("shm:pipe:svc");
  ASSERT_FALSE(pipe.ok());
  EXPECT_EQ(pipe.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pipe.status().message().find("Windows only"), std::string::npos) << pipe.status();
  EXPECT_NE(pipe.status().message().find("shm:pipe:svc"), std::string::npos) << pipe.status();
#endif
}

TEST(ShmAddressTest, ResolverUrisUseGrpcsUnixResolvers) {
  EXPECT_EQ(ResolverUriFor("/tmp/a.sock"), "unix:/tmp/a.sock");
  EXPECT_EQ(ResolverUriFor("@name"), "unix-abstract:name");
}

}  // namespace
}  // namespace transport
}  // namespace grpc_shm
