// Deterministic traffic for tests that move many frames through a
// Connection: each frame's size, bytes and checksum follow from its sequence
// number, so a receiver checks order, length and content without being told
// what was sent. Header-only, and free of POSIX calls, so the Windows
// cross-process tests share it.
#ifndef GRPC_SHM_IPC_TESTS_CHECKED_TRAFFIC_H_
#define GRPC_SHM_IPC_TESTS_CHECKED_TRAFFIC_H_

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"

namespace grpc_shm {
namespace ipc {
namespace testing {

// splitmix64's finaliser.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Mostly small, now and then up to 16 KiB.
inline size_t SizeFor(uint64_t seq) {
  const uint64_t h = Mix(seq);
  return h % 128 == 0 ? h % 16384 : h % 256;
}

inline void FillFor(uint64_t seq, uint8_t* buf, size_t size) {
  uint64_t state = Mix(seq ^ 0x5555);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::memcpy(buf + i, &state, 8);
  }
  for (; i < size; ++i) buf[i] = static_cast<uint8_t>(state >> (8 * (i % 8)));
}

inline uint32_t Checksum(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// Sends `count` frames and receives `count` frames on one thread, both
// directions at once (so either ring may be full while the other is empty),
// checking order (stream_id = sequence), size and checksum of everything
// received. Empty on success, else what went wrong.
inline std::string Exchange(Connection& c, uint64_t count) {
  std::vector<uint8_t> out(16384), in(16384), expected(16384);
  uint64_t sent = 0, received = 0;
  const auto deadline = Connection::Clock::now() + std::chrono::minutes(5);
  while (sent < count || received < count) {
    bool progress = false;
    bool wrote = false;
    while (sent < count) {
      const size_t size = SizeFor(sent);
      FillFor(sent, out.data(), size);
      FrameHeader h{};
      h.stream_id = static_cast<uint32_t>(sent);
      h.type = kFrameMessage;
      h.aux = Checksum(out.data(), size);
      ConstByteSpan part{out.data(), size};
      Status s = c.writer().TryWrite(h, &part, 1);
      if (s.code() == StatusCode::kWouldBlock) break;
      if (!s.ok()) return "write: " + s.ToString();
      ++sent;
      wrote = progress = true;
    }
    if (wrote) c.NotifyPeerOfData();
    while (received < count) {
      FrameView f;
      Status s = c.Peek(&f);
      if (s.code() == StatusCode::kWouldBlock) break;
      if (!s.ok()) return "read: " + s.ToString();
      const size_t size = SizeFor(received);
      if (f.header.stream_id != static_cast<uint32_t>(received) || f.payload_size() != size) {
        return "frame " + std::to_string(received) + " out of order or wrong size";
      }
      f.CopyPayloadTo(in.data());
      FillFor(received, expected.data(), size);
      if (Checksum(in.data(), size) != f.header.aux ||
          std::memcmp(in.data(), expected.data(), size) != 0) {
        return "frame " + std::to_string(received) + " corrupted";
      }
      c.Consume();
      ++received;
      progress = true;
    }
    if (!progress) {
      const uint32_t bits = (sent < count ? uint32_t{kWaitingForSpace} : 0u) |
                            (received < count ? uint32_t{kWaitingForData} : 0u);
      Status s = c.Wait(bits, sent < count ? SizeFor(sent) : 0, deadline);
      if (!s.ok()) return "wait: " + s.ToString();
    }
  }
  return "";
}

}  // namespace testing
}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_TESTS_CHECKED_TRAFFIC_H_
