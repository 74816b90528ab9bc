#include "bench/ipc/floors.h"

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "bench/ipc/ping_protocols.h"

namespace grpc_shm::bench {

namespace {

long Futex(std::atomic<uint32_t>* word, int op, uint32_t val) {
  // Not FUTEX_PRIVATE_FLAG: the word is shared between two processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, nullptr, nullptr, 0);
}

}  // namespace

Samples RawSpinPingPong(Harness& harness, const RoundTripBudget& budget) {
  auto* word = static_cast<SharedWord*>(SharedAlloc(4096));
  Samples lat;
  harness.ForkRun(
      [&] {
        uint32_t ping = 1;
        lat = DriveRoundTrips(budget, [&] { RawSpinPing(word, &ping); });
        word->w.store(kStopWord, std::memory_order_release);
      },
      [&] {
        uint32_t last = 0;
        while (RawSpinEcho(word, &last)) {
        }
      });
  munmap(word, 4096);
  return lat;
}

Samples RawFutexPingPong(Harness& harness, const RoundTripBudget& budget) {
  auto* word = static_cast<SharedWord*>(SharedAlloc(4096));
  Samples lat;
  harness.ForkRun(
      [&] {
        uint32_t ping = 1;
        lat = DriveRoundTrips(budget, [&] {
          word->w.store(ping, std::memory_order_release);
          Futex(&word->w, FUTEX_WAKE, 1);
          uint32_t v = word->w.load(std::memory_order_acquire);
          while (v != ping + 1) {
            Futex(&word->w, FUTEX_WAIT, v);
            v = word->w.load(std::memory_order_acquire);
          }
          ping += 2;
        });
        word->w.store(kStopWord, std::memory_order_release);
        Futex(&word->w, FUTEX_WAKE, 1);
      },
      [&] {
        uint32_t last = 0;
        for (;;) {
          uint32_t v = word->w.load(std::memory_order_acquire);
          while (v == last) {
            Futex(&word->w, FUTEX_WAIT, last);
            v = word->w.load(std::memory_order_acquire);
          }
          if (v == kStopWord) break;
          last = v + 1;
          word->w.store(last, std::memory_order_release);
          Futex(&word->w, FUTEX_WAKE, 1);
        }
      });
  munmap(word, 4096);
  return lat;
}

Samples RawSpinPayloadPingPong(Harness& harness, const RoundTripBudget& budget) {
  auto* slots = static_cast<PayloadSlot*>(SharedAlloc(4096));
  PayloadSlot* to_child = &slots[0];
  PayloadSlot* to_parent = &slots[1];
  Samples lat;
  harness.ForkRun(
      [&] {
        alignas(64) uint8_t msg[64];
        std::memset(msg, 0xab, sizeof(msg));
        uint64_t seq = 1;
        lat = DriveRoundTrips(budget, [&] { SlotPing(to_child, to_parent, seq++, msg, msg); });
        to_child->seq.store(kStopSeq, std::memory_order_release);
      },
      [&] {
        alignas(64) uint8_t msg[64];
        uint64_t last = 0;
        while (SlotEcho(to_child, to_parent, &last, msg)) {
        }
      });
  munmap(slots, 4096);
  return lat;
}

Samples RawEventFdPingPong(Harness& harness, const RoundTripBudget& budget) {
  const int to_child = eventfd(0, EFD_CLOEXEC);
  const int to_parent = eventfd(0, EFD_CLOEXEC);
  if (to_child < 0 || to_parent < 0) Die("eventfd");
  Samples lat;
  harness.ForkRun(
      [&] {
        lat = DriveRoundTrips(budget, [&] {
          uint64_t v = 1;
          if (write(to_child, &v, sizeof(v)) != sizeof(v)) Die("eventfd write");
          if (read(to_parent, &v, sizeof(v)) != sizeof(v)) Die("eventfd read");
        });
        // Any value but 1 stops the child.
        const uint64_t stop = 2;
        if (write(to_child, &stop, sizeof(stop)) != sizeof(stop)) Die("eventfd write");
      },
      [&] {
        for (;;) {
          uint64_t v = 0;
          if (read(to_child, &v, sizeof(v)) != sizeof(v)) Die("eventfd read");
          if (v != 1) break;
          if (write(to_parent, &v, sizeof(v)) != sizeof(v)) Die("eventfd write");
        }
      });
  close(to_child);
  close(to_parent);
  return lat;
}

double MemcpyGBs(size_t size, uint64_t total_bytes, long reps) {
  void* a = nullptr;
  void* b = nullptr;
  if (posix_memalign(&a, 4096, size) != 0 || posix_memalign(&b, 4096, size) != 0) Die("alloc");
  std::memset(a, 1, size);
  std::memset(b, 2, size);
  reps = std::max<long>(reps, 1);
  const long copies = std::max<long>(4, static_cast<long>(total_bytes / size / reps));
  for (long i = 0; i < std::max<long>(1, copies / 4); ++i) {
    std::memcpy(b, a, size);
    CompilerBarrier();
  }
  double best = 0;
  for (long r = 0; r < reps; ++r) {
    const uint64_t t0 = NowNs();
    for (long i = 0; i < copies; ++i) {
      std::memcpy(b, a, size);
      CompilerBarrier();
    }
    const uint64_t t1 = NowNs();
    best = std::max(best, static_cast<double>(copies) * static_cast<double>(size) /
                              static_cast<double>(t1 - t0));
  }
  free(a);
  free(b);
  return best;  // bytes per ns = GB/s
}

}  // namespace grpc_shm::bench
