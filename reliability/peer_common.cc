#include "reliability/peer_common.h"

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace grpc_shm {
namespace reliability {

void Say(const char* format, ...) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  va_list args;
  va_start(args, format);
  std::vfprintf(stdout, format, args);
  va_end(args);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  // The last occurrence wins, so a script's defaults can be overridden.
  const std::string prefix = "--" + name + "=";
  std::string value = fallback;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) value = argv[i] + prefix.size();
  }
  return value;
}

int64_t IntFlag(int argc, char** argv, const std::string& name, int64_t fallback) {
  std::string v = Flag(argc, argv, name, "");
  return v.empty() ? fallback : std::stoll(v);
}

uint64_t NextRandom(uint64_t* state) {
  // xorshift64*: fast enough to fill megabytes per message.
  uint64_t x = *state == 0 ? 0x9e3779b97f4a7c15ull : *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

std::string RandomPayload(size_t bytes, uint64_t* state) {
  std::string out(bytes, '\0');
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t r = NextRandom(state);
    std::memcpy(&out[i], &r, 8);
  }
  uint64_t r = NextRandom(state);
  if (i < bytes) std::memcpy(&out[i], &r, bytes - i);
  return out;
}

uint32_t Crc32(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::string ChecksumTag(const std::string& payload) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "crc:%08x", Crc32(payload));
  return buf;
}

bool ChecksumMatches(const std::string& tag, const std::string& payload) {
  return tag == ChecksumTag(payload);
}

}  // namespace reliability
}  // namespace grpc_shm
