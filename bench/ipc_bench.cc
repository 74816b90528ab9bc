// ipc_bench: the IPC core between two processes, next to the physical floors,
// all measured in one run.
//
//   1. Round-trip latency of a 64-byte message (mean/p50/p99/p99.9) through a
//      Connection: sleeping wakeups (spin 0) with the default backend (memfd +
//      socketpair doorbell), the eventfd and futex doorbells, and the
//      portable POSIX backend (shm_open + socketpair), and spinning (spin so
//      long it never sleeps).
//   2. Raw floors: busy-spin and futex ping-pong on one bare shared atomic
//      (MAP_SHARED|MAP_ANONYMOUS before fork, no ring), an eventfd ping-pong,
//      and a busy-spin ping-pong that carries 64 bytes in the polled slot.
//   2b. The spinning round trip against its floors in paired blocks: in
//      fresh process pairs, blocks of the bare-atomic spin, the 64-byte slot
//      spin and the ring alternate; the median of per-block p50 ratios is the
//      spinning target's figure, broken down by the floor each block saw (the
//      host moves the vCPUs between placements where a cache-line transfer
//      costs 2-10x more or less). Each block also times samples of 8 round
//      trips, which leave the clock read (~30 ns here) out of both sides.
//   3. One-way throughput: 64-byte messages/s with spinning producer and
//      consumer, and GB/s for 64 KiB and 1 MiB messages (WriteMessage on one
//      side, Peek + copy out + Consume on the other), next to single-core
//      memcpy of the same sizes.
//   4. Ratios against the targets of issue 2, PASS/MISS each.
//
// Rows marked "diag:" locate costs: the bare RingWriter/RingReader without a
// Connection (with and without the seq_cst fence Connection::WakePeerIf adds
// per frame), a spinning round trip on a fresh connection's first lap (page
// faults on untouched ring pages), a 64 B one-way stream with sleeping
// wakeups (and how often each side went to sleep).
//
// Method: latency scenarios run interleaved in rounds (samples pooled), each
// on a fresh connection whose rings are first swept once with bulk data (so
// page faults of first touches are not timed), then warmed up; the number of
// timed round trips is capped by count and by a time budget. Throughput
// figures are the best and median of time-bounded repetitions after a
// warm-up, run in rounds spread over the run. The load average is printed:
// other work on the machine skews everything, spinning figures most.
//
// Processes: the parent listens (Listener::Listen), forks, and the child
// Connect()s. Parent and child are pinned to different CPUs when two or more
// are available. The parent is the server side of every connection, the
// child the client.
//
// Note on spinning: in the spinning scenarios both sides use the library's
// own spin (options.spin) in ReadFrame()/WriteFrame()/WriteMessage().
//
// Usage: ipc_bench [--quick] [--json FILE] [--ring-bytes N] [--no-pin]
//                  [--rounds N] [--only KEY,...]
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#include "plugin/ipc/ring.h"
#include "plugin/platform/platform.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define BENCH_CPU_RELAX() asm volatile("yield")
#else
#define BENCH_CPU_RELAX() \
  do {                    \
  } while (0)
#endif

namespace {

using grpc_shm::ipc::Connection;
using grpc_shm::ipc::ConnectionOptions;
using grpc_shm::ipc::ConstByteSpan;
using grpc_shm::ipc::FrameHeader;
using grpc_shm::ipc::FrameView;
using grpc_shm::ipc::Listener;
using grpc_shm::ipc::Status;
using grpc_shm::ipc::StatusCode;
namespace platform = grpc_shm::platform;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ config

struct Config {
  bool quick = false;
  bool pin = true;
  std::string json_path;
  uint32_t ring_bytes = grpc_shm::ipc::kDefaultRingBytes;
  // Round trips per latency scenario (measured) and warm-up before them.
  long rt_iters = 200000;
  long rt_warmup = 20000;
  long rt_rounds = 4;  // latency scenarios run interleaved in this many rounds
  // Comma-separated latency scenario keys to run (empty: all, plus the
  // throughput and target sections, which need every scenario).
  std::string only;
  // Paired spinning measurement: fresh process pairs per latency round,
  // blocks per pair, timed round trips per block.
  long paired_pairs_per_round = 2;
  long paired_blocks = 50;
  long paired_per_block = 500;
  // Per scenario and round: time budgets for warm-up and measurement.
  uint64_t rt_warm_budget_ns = 200000000;
  uint64_t rt_budget_ns = 2000000000;
  // Messages in the 64-byte throughput run (and its warm-up).
  long tp_msgs = 20000000;
  long tp_warmup = 500000;
  // Bytes per large-message throughput run.
  uint64_t big_bytes = 4ull << 30;
  uint64_t big_warmup_bytes = 128ull << 20;
  // Bytes per memcpy measurement.
  uint64_t memcpy_bytes = 4ull << 30;
  int scenario_timeout_s = 60;
  // Measured repetitions per throughput figure and round (best and median
  // over all reported), and rounds spread over the run.
  long tp_reps = 5;
  long tp_rounds = 3;
  double tp_rep_budget_s = 0.5;
};

Config g_cfg;
int g_parent_cpu = -1;
int g_child_cpu = -1;
int g_ncpus = 0;

// With one CPU a busy-wait only burns the time slice the peer needs: yield
// instead (spinning figures then mean little, but the run stays short).
bool g_single_cpu = false;
inline void Relax() {
  if (g_single_cpu) {
    sched_yield();
  } else {
    BENCH_CPU_RELAX();
  }
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "ipc_bench [%d]: %s\n", static_cast<int>(getpid()), what.c_str());
  std::fflush(stderr);
  _exit(2);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

inline uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

inline void CompilerBarrier() { asm volatile("" ::: "memory"); }

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) std::perror("sched_setaffinity");
}

void SetUpPinning() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return;
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  g_ncpus = static_cast<int>(cpus.size());
  g_single_cpu = cpus.size() < 2;
  if (!g_cfg.pin || cpus.size() < 2) return;
  g_parent_cpu = cpus[0];
  g_child_cpu = cpus[1];
  PinTo(g_parent_cpu);
}

// "0.52 0.31 0.20 3/85 1234" -> "0.52 0.31 0.20 3/85" (1-, 5-, 15-minute
// load, runnable/total tasks): other work on the machine skews every figure.
std::string LoadAverage() {
  char buf[128] = {0};
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "?";
  if (!std::fgets(buf, sizeof(buf), f)) buf[0] = 0;
  std::fclose(f);
  std::string s(buf);
  const size_t last = s.find_last_of(' ');
  return last == std::string::npos ? s : s.substr(0, last);
}

// Involuntary context switches (preemptions) of this process and of its
// waited-for children: non-zero means other work competed for our CPUs.
long Preemptions(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return ru.ru_nivcsw;
}

// Anonymous shared memory, mapped before fork so both processes see it.
void* SharedAlloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Die("mmap shared");
  std::memset(p, 0, bytes);
  return p;
}

long VoluntaryCtxSwitches() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw;
}

// Runs `child` in a forked, pinned child process (which _exit()s when it
// returns) and `parent` here; waits for the child. The child gets a SIGALRM
// watchdog so a bug never hangs CI.
void ForkRun(const std::function<void()>& parent, const std::function<void()>& child) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    PinTo(g_child_cpu);
    alarm(static_cast<unsigned>(g_cfg.scenario_timeout_s));
    child();
    _exit(0);
  }
  alarm(static_cast<unsigned>(g_cfg.scenario_timeout_s) + 5);
  parent();
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) Die("waitpid");
  alarm(0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("child failed (status " + std::to_string(status) + ")");
  }
}

// Same, with a Connection between the two: the parent listens before the
// fork and accepts; the child connects with `options`.
void ConnectedRun(const ConnectionOptions& options, const std::function<void(Connection&)>& parent,
                  const std::function<void(Connection&)>& child) {
  static int counter = 0;
  const std::string address =
      "@grpc-shm-ipc-bench-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::unique_ptr<Listener> listener;
  // The benchmark trusts its own child: allow every backend, including those
  // a listener refuses by default because a hostile client could abuse them.
  Listener::Options listen_options;
  listen_options.allow_eventfd = true;
  listen_options.allow_posix_shm = true;
  // Both sides wait the same way: spin for options.spin, then sleep.
  listen_options.spin = options.spin;
  Check(Listener::Listen(address, listen_options, &listener), "Listen");
  ForkRun(
      [&] {
        std::unique_ptr<Connection> conn;
        Check(listener->Accept(&conn, 10000), "Accept");
        parent(*conn);
        conn.reset();
      },
      [&] {
        (void)listener.release();  // the parent's; leave it alone (we _exit)
        std::unique_ptr<Connection> conn;
        Check(grpc_shm::ipc::Connect(address, options, &conn), "Connect");
        child(*conn);
        conn.reset();
      });
}

// ------------------------------------------------------------------ stats

struct LatencyStats {
  double mean_ns = 0, p50_ns = 0, p99_ns = 0, p999_ns = 0, min_ns = 0, max_ns = 0;
  long samples = 0;
};

using Samples = std::vector<uint64_t>;

LatencyStats Summarize(Samples v) {
  LatencyStats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (uint64_t x : v) sum += static_cast<double>(x);
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return static_cast<double>(v[std::min(i, v.size() - 1)]);
  };
  s.samples = static_cast<long>(v.size());
  s.mean_ns = sum / static_cast<double>(v.size());
  s.p50_ns = pct(0.50);
  s.p99_ns = pct(0.99);
  s.p999_ns = pct(0.999);
  s.min_ns = static_cast<double>(v.front());
  s.max_ns = static_cast<double>(v.back());
  return s;
}

// ------------------------------------------------------------------ raw floors

long futex(std::atomic<uint32_t>* word, int op, uint32_t val) {
  // Not FUTEX_PRIVATE_FLAG: the word is shared between two processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, nullptr, nullptr, 0);
}

struct alignas(64) SharedWord {
  std::atomic<uint32_t> w;
};

constexpr uint32_t kStopWord = 0xffffffffu;
constexpr long kMinSamples = 2000;

// The parent side of every latency scenario: a warm-up of up to rt_warmup
// round trips (bounded by the warm-up time budget), then as many timed round
// trips as rt_iters allows within the time budget (sleeping round trips on a
// VM can be ~100 us, and the whole run must stay within its time limit).
template <class F>
Samples DriveRoundTrips(F&& round_trip, long warmup = -1, long max_samples = -1) {
  if (warmup < 0) warmup = g_cfg.rt_warmup;
  const uint64_t w0 = NowNs();
  long warm = 0;
  while (warm < warmup && (warm < 100 || NowNs() - w0 < g_cfg.rt_warm_budget_ns)) {
    round_trip();
    ++warm;
  }
  const double est_ns =
      warm > 0 ? static_cast<double>(NowNs() - w0) / static_cast<double>(warm) : 1e3;
  long n = std::min<long>(
      g_cfg.rt_iters,
      std::max<long>(kMinSamples, static_cast<long>(static_cast<double>(g_cfg.rt_budget_ns) /
                                                    std::max(est_ns, 1.0))));
  if (max_samples > 0) n = std::min(n, max_samples);
  Samples lat(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) {
    const uint64_t t0 = NowNs();
    round_trip();
    const uint64_t t1 = NowNs();
    lat[static_cast<size_t>(i)] = t1 - t0;
  }
  return lat;
}

// Busy-spin ping-pong on one shared atomic: the parent publishes an odd
// value, the child answers with value + 1.
// The two halves of each spinning protocol are shared by its own scenario
// and by the paired blocks, so both time exactly the same thing.
//
// Bare atomic, timing side: publish an odd value, wait for value + 1.
inline void RawSpinPing(SharedWord* word, uint32_t* ping) {
  word->w.store(*ping, std::memory_order_release);
  while (word->w.load(std::memory_order_acquire) != *ping + 1) Relax();
  *ping += 2;
}

// Bare atomic, echoing side: wait for a new value and answer value + 1.
// False (no answer) on kStopWord.
inline bool RawSpinEcho(SharedWord* word, uint32_t* last) {
  uint32_t v;
  while ((v = word->w.load(std::memory_order_acquire)) == *last) Relax();
  if (v == kStopWord) return false;
  *last = v + 1;
  word->w.store(*last, std::memory_order_release);
  return true;
}

Samples RawSpinPingPong() {
  auto* word = static_cast<SharedWord*>(SharedAlloc(4096));
  Samples lat;
  ForkRun(
      [&] {
        uint32_t ping = 1;
        lat = DriveRoundTrips([&] { RawSpinPing(word, &ping); });
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

// Futex ping-pong on one shared atomic, no spinning at all: each side
// publishes its value, FUTEX_WAKEs, and FUTEX_WAITs until the answer arrives.
Samples RawFutexPingPong() {
  auto* word = static_cast<SharedWord*>(SharedAlloc(4096));
  Samples lat;
  ForkRun(
      [&] {
        uint32_t ping = 1;
        lat = DriveRoundTrips([&] {
          word->w.store(ping, std::memory_order_release);
          futex(&word->w, FUTEX_WAKE, 1);
          uint32_t v = word->w.load(std::memory_order_acquire);
          while (v != ping + 1) {
            futex(&word->w, FUTEX_WAIT, v);
            v = word->w.load(std::memory_order_acquire);
          }
          ping += 2;
        });
        word->w.store(kStopWord, std::memory_order_release);
        futex(&word->w, FUTEX_WAKE, 1);
      },
      [&] {
        uint32_t last = 0;
        for (;;) {
          uint32_t v = word->w.load(std::memory_order_acquire);
          while (v == last) {
            futex(&word->w, FUTEX_WAIT, last);
            v = word->w.load(std::memory_order_acquire);
          }
          if (v == kStopWord) break;
          last = v + 1;
          word->w.store(last, std::memory_order_release);
          futex(&word->w, FUTEX_WAKE, 1);
        }
      });
  munmap(word, 4096);
  return lat;
}

// Busy-spin ping-pong that also carries 64 bytes each way, with no ring: each
// direction has one 128-byte slot, a sequence word followed by the payload
// (72 bytes, two cache lines, like a ring record of a 64-byte frame). The
// writer copies the payload in and then publishes the sequence number
// (release); the reader polls the sequence word itself, then copies the
// payload out. The floor for moving 64 bytes, not just a flag.
struct alignas(64) PayloadSlot {
  std::atomic<uint64_t> seq;
  uint8_t payload[120];
};

constexpr uint64_t kStopSeq = ~uint64_t{0};

// 64-byte slot, timing side: copy `msg` in, publish `seq`, wait for the
// echo of `seq`, copy its payload out to `in`.
inline void SlotPing(PayloadSlot* out, PayloadSlot* back, uint64_t seq, const uint8_t* msg,
                     uint8_t* in) {
  std::memcpy(out->payload, msg, 64);
  out->seq.store(seq, std::memory_order_release);
  while (back->seq.load(std::memory_order_acquire) != seq) Relax();
  std::memcpy(in, back->payload, 64);
  CompilerBarrier();
}

// 64-byte slot, echoing side: wait for a new sequence number, copy the
// payload out to `buf` and back into the answer. False (no answer) on
// kStopSeq.
inline bool SlotEcho(PayloadSlot* in, PayloadSlot* out, uint64_t* last, uint8_t* buf) {
  uint64_t v;
  while ((v = in->seq.load(std::memory_order_acquire)) == *last) Relax();
  if (v == kStopSeq) return false;
  std::memcpy(buf, in->payload, 64);
  std::memcpy(out->payload, buf, 64);
  out->seq.store(v, std::memory_order_release);
  *last = v;
  return true;
}

Samples RawSpinPayloadPingPong() {
  auto* slots = static_cast<PayloadSlot*>(SharedAlloc(4096));
  PayloadSlot* to_child = &slots[0];
  PayloadSlot* to_parent = &slots[1];
  Samples lat;
  ForkRun(
      [&] {
        alignas(64) uint8_t msg[64];
        std::memset(msg, 0xab, sizeof(msg));
        uint64_t seq = 1;
        lat = DriveRoundTrips([&] { SlotPing(to_child, to_parent, seq++, msg, msg); });
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

// eventfd ping-pong: one blocking eventfd per direction. Writing 2 stops the
// child.
Samples RawEventFdPingPong() {
  const int to_child = eventfd(0, EFD_CLOEXEC);
  const int to_parent = eventfd(0, EFD_CLOEXEC);
  if (to_child < 0 || to_parent < 0) Die("eventfd");
  Samples lat;
  ForkRun(
      [&] {
        lat = DriveRoundTrips([&] {
          uint64_t v = 1;
          if (write(to_child, &v, sizeof(v)) != sizeof(v)) Die("eventfd write");
          if (read(to_parent, &v, sizeof(v)) != sizeof(v)) Die("eventfd read");
        });
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

// ------------------------------------------------------------------ ring helpers

FrameHeader MessageHeader(uint32_t stream = 1) {
  FrameHeader h{};
  h.stream_id = stream;
  h.type = grpc_shm::ipc::kFrameMessage;
  return h;
}

FrameHeader ControlHeader(uint32_t aux) {
  FrameHeader h{};
  h.type = grpc_shm::ipc::kFramePing;
  h.aux = aux;
  return h;
}

// The timing side's 64-byte message and the buffer its echo is copied to.
struct PingBuffers {
  PingBuffers() { std::memset(msg, 0xab, sizeof(msg)); }
  alignas(64) uint8_t msg[64];
  alignas(64) uint8_t in[64];
};

// Ring, timing side: send `seq` in the 64-byte message `msg`, wait for the
// echo, copy it out to `in`, consume it and check it is this round trip's.
inline void RingPing(Connection& c, uint64_t seq, uint8_t* msg, uint8_t* in, FrameView* f) {
  static const FrameHeader kHeader = MessageHeader();
  std::memcpy(msg, &seq, sizeof(seq));
  const ConstByteSpan part{msg, 64};
  Check(c.WriteFrame(kHeader, &part, 1), "rt send");
  Check(c.ReadFrame(f), "rt recv");
  if (f->payload_size() != 64) Die("rt: bad reply size");
  f->CopyPayloadTo(in);
  c.Consume();
  if (std::memcmp(in, &seq, sizeof(seq)) != 0) Die("rt: reply out of order");
}

// Ring, echoing side, once the 64-byte message is in `f`: copy it out to
// `buf`, consume it and write it back (options.spin applies).
inline void RingEcho(Connection& c, const FrameView& f, uint8_t* buf) {
  static const FrameHeader kHeader = MessageHeader();
  if (f.payload_size() != 64) Die("echo: bad size");
  f.CopyPayloadTo(buf);
  c.Consume();
  const ConstByteSpan part{buf, 64};
  Check(c.WriteFrame(kHeader, &part, 1), "echo send");
}

// ------------------------------------------------------------------ ring latency

// 64-byte ping-pong through a Connection. The parent (server) times each
// round trip: write request, read reply, copy it out, consume. The child
// (client) echoes until a kFrameGoaway. Both sides use WriteFrame/ReadFrame,
// so both spin for options.spin before they sleep, as an application would.
//
// A fresh connection's ring pages are not mapped yet in either process: each
// first touch of a 4 KiB page is a page fault (both processes, both rings),
// which would land in the timed round trips of the first lap around the
// ring. `pretouch` sends one ring's worth of bulk data each way first
// (WriteMessage, echoed), so the timed part sees the steady state. With
// `pretouch` false the timed round trips are exactly the first lap (cold).
Samples RingRoundTrip(const ConnectionOptions& options, bool pretouch = true) {
  Samples lat;
  ConnectedRun(
      options,
      [&](Connection& c) {
        PingBuffers buffers;
        FrameView f;
        if (pretouch) {
          std::vector<uint8_t> bulk(c.send_ring_bytes(), 0x11);
          Check(c.WriteMessage(2, 0, bulk.data(), bulk.size()), "pretouch send");
          size_t got = 0;
          for (bool more = true; more;) {
            Check(c.ReadFrame(&f), "pretouch recv");
            got += f.payload_size();
            more = f.header.flags & grpc_shm::ipc::kFlagMoreChunks;
            c.Consume();
          }
          if (got != bulk.size()) Die("pretouch: bad echo size");
        }
        uint64_t seq = 0;
        auto round_trip = [&] { RingPing(c, seq++, buffers.msg, buffers.in, &f); };
        if (pretouch) {
          lat = DriveRoundTrips(round_trip);
        } else {
          // Exactly the first lap of the smaller ring: no warm-up at all.
          const long lap = static_cast<long>(std::min(c.send_ring_bytes(), c.receive_ring_bytes()) /
                                             grpc_shm::ipc::FrameRecordSize(sizeof(buffers.msg)));
          lat = DriveRoundTrips(round_trip, 0, lap);
        }
        FrameHeader stop{};
        stop.type = grpc_shm::ipc::kFrameGoaway;
        Check(c.WriteFrame(stop, nullptr, 0), "rt stop");
      },
      [&](Connection& c) {
        alignas(64) uint8_t buf[64];
        std::vector<uint8_t> bulk;
        FrameView f;
        for (;;) {
          Check(c.ReadFrame(&f), "echo recv");
          if (f.header.type != grpc_shm::ipc::kFrameMessage) {
            c.Consume();
            break;
          }
          if (f.header.stream_id == 2) {  // pre-touch bulk message: echo its size
            size_t total = 0;
            for (;;) {
              total += f.payload_size();
              const bool more = f.header.flags & grpc_shm::ipc::kFlagMoreChunks;
              c.Consume();
              if (!more) break;
              Check(c.ReadFrame(&f), "pretouch recv");
            }
            bulk.assign(total, 0x22);
            Check(c.WriteMessage(2, 0, bulk.data(), bulk.size()), "pretouch echo");
            continue;
          }
          RingEcho(c, f, buf);
        }
      });
  return lat;
}

// ------------------------------------------------------------------ throughput

struct Throughput {
  // Over the measured repetitions: best and median rate. On a machine shared
  // with other work the best repetition is the closest to an undisturbed one.
  double best_msgs_per_s = 0;
  double median_msgs_per_s = 0;
  double best_gb_per_s = 0;
  double median_gb_per_s = 0;
  // Voluntary context switches (= times a process went to sleep) per message.
  double parent_cs_per_msg = 0;
  double child_cs_per_msg = 0;
  std::vector<double> rates;  // every measured repetition, msgs/s
  size_t size = 0;
};

struct alignas(64) ChildReport {
  long ctx_switches = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ------------------------------------------------------------------ paired spin

// The spinning round trip and its floor measured side by side in one process
// pair: alternating blocks of raw busy-spin round trips (bare atomic) and
// ring round trips (Connection, both sides spin in ReadFrame).
// On a VM the host moves vCPUs between cores, and a cache-line transfer costs
// 2-4x more on some placements than on others, often changing within a
// second; a ratio of medians over blocks a few milliseconds apart compares
// like with like, where pooled samples from different seconds do not.
// Per block: p50 of the ring over p50 of each floor, and the bare floor's own
// p50 per round trip (which tells the placement the block ran in).
struct PairedView {
  std::vector<double> ratios, payload_ratios, raw_p50s;
  Samples raw, payload, ring;  // all samples, pooled (ns per sample)
};
struct PairedSpin {
  // One round trip per sample (p50 of round-trip latency, as every other
  // latency row), and kBatch per sample: the guest clock ticks in 10 ns
  // steps and a clock read costs ~30 ns, which one-per-sample adds to both
  // sides of a ratio.
  PairedView single, batched;
  long pairs = 0;
  static constexpr int kBatch = 8;
};

// Adds `blocks` blocks measured in one fresh process pair to `out`. Each block
// times, in a rotating order, the bare-atomic ping-pong, the 64-byte slot
// ping-pong (raw_spin_payload's protocol) and the ring, each both ways.
void PairedSpinRoundTrips(const ConnectionOptions& options, long blocks, long per_block,
                          PairedSpin* out) {
  constexpr long kBlockWarmup = 200;  // untimed round trips after each switch
  constexpr int kBatch = PairedSpin::kBatch;
  constexpr int kKinds = 3;  // raw, payload slot, ring
  auto* word = static_cast<SharedWord*>(SharedAlloc(4096));
  auto* slots = static_cast<PayloadSlot*>(SharedAlloc(4096));
  ++out->pairs;
  ConnectedRun(
      options,
      [&](Connection& c) {
        PingBuffers buffers;
        FrameView f;
        uint32_t ping = 1;
        uint64_t seq = 0, slot_seq = 0;
        // [0: one round trip per sample, 1: kBatch][kind] -> this block's samples
        std::vector<Samples> block[2];
        for (auto& b : block) b.assign(kKinds, Samples(static_cast<size_t>(per_block)));
        auto raw_rt = [&] { RawSpinPing(word, &ping); };
        auto payload_rt = [&] {
          SlotPing(&slots[0], &slots[1], ++slot_seq, buffers.msg, buffers.in);
        };
        auto ring_rt = [&] { RingPing(c, seq++, buffers.msg, buffers.in, &f); };
        auto timed = [&](int kind) {
          auto run = [&](auto& rt) {
            for (long i = 0; i < kBlockWarmup; ++i) rt();
            Samples& single = block[0][static_cast<size_t>(kind)];
            Samples& batched = block[1][static_cast<size_t>(kind)];
            for (long i = 0; i < per_block; ++i) {
              const uint64_t t0 = NowNs();
              rt();
              single[static_cast<size_t>(i)] = NowNs() - t0;
            }
            for (long i = 0; i < per_block; ++i) {
              const uint64_t t0 = NowNs();
              for (int k = 0; k < kBatch; ++k) rt();
              batched[static_cast<size_t>(i)] = NowNs() - t0;
            }
          };
          if (kind == 0) run(raw_rt);
          if (kind == 1) run(payload_rt);
          if (kind == 2) run(ring_rt);
        };
        // Pre-touch the ring pages: one lap each way.
        for (uint32_t lap = 0; lap < c.send_ring_bytes() / 80 + 1; ++lap) ring_rt();
        for (long b = 0; b < blocks; ++b) {
          // Rotate the order so no kind always follows the same other one.
          for (int k = 0; k < kKinds; ++k) timed(static_cast<int>((b + k) % kKinds));
          for (int batched = 0; batched < 2; ++batched) {
            PairedView& v = batched ? out->batched : out->single;
            const std::vector<Samples>& got = block[batched];
            const double raw = std::max(Summarize(got[0]).p50_ns, 1.0);
            const double payload = std::max(Summarize(got[1]).p50_ns, 1.0);
            const double ring = Summarize(got[2]).p50_ns;
            v.ratios.push_back(ring / raw);
            v.payload_ratios.push_back(ring / payload);
            v.raw_p50s.push_back(raw / (batched ? kBatch : 1));
            v.raw.insert(v.raw.end(), got[0].begin(), got[0].end());
            v.payload.insert(v.payload.end(), got[1].begin(), got[1].end());
            v.ring.insert(v.ring.end(), got[2].begin(), got[2].end());
          }
        }
      },
      [&](Connection& c) {
        alignas(64) uint8_t buf[64];
        FrameView f;
        uint32_t last = 0;
        uint64_t last_slot = 0;
        const long per_kind = kBlockWarmup + per_block + per_block * kBatch;
        auto raw_echo = [&] { RawSpinEcho(word, &last); };
        auto payload_echo = [&] { SlotEcho(&slots[0], &slots[1], &last_slot, buf); };
        auto ring_echo = [&] {
          Check(c.ReadFrame(&f), "paired echo recv");
          RingEcho(c, f, buf);
        };
        for (uint32_t lap = 0; lap < c.send_ring_bytes() / 80 + 1; ++lap) ring_echo();
        for (long b = 0; b < blocks; ++b) {
          for (int k = 0; k < kKinds; ++k) {
            const int kind = static_cast<int>((b + k) % kKinds);
            for (long i = 0; i < per_kind; ++i) {
              if (kind == 0) raw_echo();
              if (kind == 1) payload_echo();
              if (kind == 2) ring_echo();
            }
          }
        }
      });
  munmap(word, 4096);
  munmap(slots, 4096);
}

// Messages per measured repetition: `max`, or fewer where the rate seen in
// the warm-up says a repetition would overrun its time budget (a loaded
// machine must not stretch the run past its limit).
long RepCount(double warm_rate, long max) {
  const long by_time = static_cast<long>(warm_rate * g_cfg.tp_rep_budget_s);
  return std::max<long>(1, std::min(max, by_time));
}

void FillRates(const std::vector<double>& rates, size_t size, Throughput* t) {
  t->rates = rates;
  t->size = size;
  t->best_msgs_per_s = *std::max_element(rates.begin(), rates.end());
  t->median_msgs_per_s = Median(rates);
  t->best_gb_per_s = t->best_msgs_per_s * static_cast<double>(size) * 1e-9;
  t->median_gb_per_s = t->median_msgs_per_s * static_cast<double>(size) * 1e-9;
}

// The repetitions of two runs of the same scenario, as one.
Throughput Merge(const Throughput& a, const Throughput& b) {
  if (a.rates.empty()) return b;
  std::vector<double> rates = a.rates;
  rates.insert(rates.end(), b.rates.begin(), b.rates.end());
  Throughput t;
  FillRates(rates, b.size, &t);
  t.parent_cs_per_msg = (a.parent_cs_per_msg + b.parent_cs_per_msg) / 2;
  t.child_cs_per_msg = (a.child_cs_per_msg + b.child_cs_per_msg) / 2;
  return t;
}

// One-way stream of messages of `size` bytes, child (client, producer) ->
// parent (server, consumer): `warm` unmeasured messages, then `count` more in
// `reps` measured repetitions. The producer uses WriteMessage (chunks of a
// quarter ring for big messages); the consumer reads every frame, copies its
// payload out into a message buffer, and consumes it. Timing is on the
// consumer, from sending "go" to receiving the last byte of the repetition.
Throughput OneWay(const ConnectionOptions& options, size_t size, long count, long warm) {
  auto* report = static_cast<ChildReport*>(SharedAlloc(4096));
  const long reps = std::max<long>(1, std::min<long>(g_cfg.tp_reps, count));
  const long max_per_rep = count / reps;
  long per_rep = max_per_rep;
  Throughput result;
  ConnectedRun(
      options,
      [&](Connection& c) {
        std::vector<uint8_t> dst(size + 64);
        FrameView f;
        long cs_total = 0;
        auto round = [&](long n) {
          const FrameHeader go = ControlHeader(static_cast<uint32_t>(n));
          const long cs0 = VoluntaryCtxSwitches();
          const uint64_t t0 = NowNs();
          Check(c.WriteFrame(go, nullptr, 0), "go");
          for (long m = 0; m < n; ++m) {
            size_t off = 0;
            for (;;) {
              Check(c.ReadFrame(&f), "tp recv");
              if (off + f.payload_size() > size) Die("tp: message too long");
              f.CopyPayloadTo(dst.data() + off);
              off += f.payload_size();
              const bool more = f.header.flags & grpc_shm::ipc::kFlagMoreChunks;
              c.Consume();
              if (!more) break;
            }
            if (off != size) Die("tp: message too short");
          }
          const uint64_t t1 = NowNs();
          cs_total += VoluntaryCtxSwitches() - cs0;
          // Spot check of the copied payload: first and last byte of the
          // last message carry its index.
          const uint8_t tag = static_cast<uint8_t>(n - 1);
          if (dst[0] != tag || dst[size - 1] != tag) Die("tp: payload mismatch");
          return static_cast<double>(n) / (static_cast<double>(t1 - t0) * 1e-9);
        };
        if (warm > 0) per_rep = RepCount(round(warm), max_per_rep);
        cs_total = 0;
        std::vector<double> rates;
        for (long r = 0; r < reps; ++r) rates.push_back(round(per_rep));
        Check(c.WriteFrame(ControlHeader(0), nullptr, 0), "done");
        FillRates(rates, size, &result);
        result.parent_cs_per_msg =
            static_cast<double>(cs_total) / static_cast<double>(per_rep * reps);
      },
      [&](Connection& c) {
        std::vector<uint8_t> src(size, 0);
        FrameView f;
        long cs_measured = 0;
        for (int round = 0;; ++round) {
          Check(c.ReadFrame(&f), "wait go");
          const long n = f.header.aux;
          c.Consume();
          if (n == 0) break;
          const long cs0 = VoluntaryCtxSwitches();
          for (long m = 0; m < n; ++m) {
            src[0] = src[size - 1] = static_cast<uint8_t>(m);
            Check(c.WriteMessage(1, 0, src.data(), size), "WriteMessage");
          }
          if (round > 0 || warm == 0) cs_measured += VoluntaryCtxSwitches() - cs0;
        }
        report->ctx_switches = cs_measured;
      });
  result.child_cs_per_msg =
      static_cast<double>(report->ctx_switches) / static_cast<double>(per_rep * reps);
  munmap(report, 4096);
  return result;
}

// Single-core memcpy of `size`-byte blocks between two buffers of that size
// (warm, as the ring's source and destination buffers are), GB/s of copied
// bytes.
double MemcpyGBs(size_t size, uint64_t total_bytes) {
  void* a = nullptr;
  void* b = nullptr;
  if (posix_memalign(&a, 4096, size) != 0 || posix_memalign(&b, 4096, size) != 0) Die("alloc");
  std::memset(a, 1, size);
  std::memset(b, 2, size);
  const long reps = std::max<long>(g_cfg.tp_reps, 1);
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

// ------------------------------------------------------------------ bare ring (diagnostic)

// RingWriter/RingReader on a plain shared mapping, with no Connection around
// them: no wait words, no doorbells. With `fence`, each Commit and Consume is
// followed by exactly what Connection::WakePeerIf does when the peer is not
// asleep (a seq_cst fence and a relaxed load of the peer's wait word), so the
// difference between the two rows is the cost of that fence.
struct BareSegment {
  static constexpr size_t kCtl = 4096;
  uint8_t* base;
  uint32_t ring;
  explicit BareSegment(uint32_t ring_bytes) : ring(ring_bytes) {
    base = static_cast<uint8_t*>(SharedAlloc(kCtl + 2 * size_t{ring_bytes}));
  }
  ~BareSegment() { munmap(base, kCtl + 2 * size_t{ring}); }
  grpc_shm::ipc::RingControl* control(int dir) {
    return reinterpret_cast<grpc_shm::ipc::RingControl*>(base + 128 * dir);
  }
  uint8_t* data(int dir) { return base + kCtl + size_t{ring} * dir; }
  // Maps every page in this process (the parent's mappings are populated by
  // SharedAlloc's memset; a forked child starts without them).
  void Pretouch() {
    const size_t bytes = kCtl + 2 * size_t{ring};
    for (size_t off = 0; off < bytes; off += 4096) {
      (void)*reinterpret_cast<volatile uint8_t*>(base + off);
    }
  }
  std::atomic<uint32_t>* wait_word(int side) {
    return reinterpret_cast<std::atomic<uint32_t>*>(base + 1024 + 64 * side);
  }
  std::atomic<uint32_t>* go() { return reinterpret_cast<std::atomic<uint32_t>*>(base + 2048); }
};

inline void MaybeFence(bool fence, std::atomic<uint32_t>* peer_wait) {
  if (!fence) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (peer_wait->load(std::memory_order_relaxed) != 0) Die("bare ring: unexpected waiter");
}

Samples BareRingRoundTrip(bool fence) {
  BareSegment seg(g_cfg.ring_bytes);
  Samples lat;
  auto side = [&](bool parent) {
    grpc_shm::ipc::RingWriter w(seg.control(parent ? 0 : 1), seg.data(parent ? 0 : 1), seg.ring);
    grpc_shm::ipc::RingReader r(seg.control(parent ? 1 : 0), seg.data(parent ? 1 : 0), seg.ring);
    std::atomic<uint32_t>* peer_wait = seg.wait_word(parent ? 1 : 0);
    alignas(64) uint8_t msg[64];
    std::memset(msg, 0xab, sizeof(msg));
    const ConstByteSpan part{msg, sizeof(msg)};
    FrameView f;
    auto send = [&](const FrameHeader& h, size_t parts) {
      Status s;
      while ((s = w.TryWrite(h, &part, parts)).code() == StatusCode::kWouldBlock) {
        Relax();
      }
      Check(s, "bare write");
      MaybeFence(fence, peer_wait);
    };
    auto recv = [&] {
      Status s;
      while ((s = r.Peek(&f)).code() == StatusCode::kWouldBlock) Relax();
      Check(s, "bare peek");
      const bool message = f.header.type == grpc_shm::ipc::kFrameMessage;
      if (message) f.CopyPayloadTo(msg);
      r.Consume();
      MaybeFence(fence, peer_wait);
      return message;
    };
    const FrameHeader h = MessageHeader();
    if (parent) {
      lat = DriveRoundTrips([&] {
        send(h, 1);
        recv();
      });
      FrameHeader stop{};
      stop.type = grpc_shm::ipc::kFrameGoaway;
      send(stop, 0);
    } else {
      while (recv()) send(h, 1);
    }
  };
  ForkRun([&] { side(true); },
          [&] {
            seg.Pretouch();
            side(false);
          });
  return lat;
}

// One-way stream of `size`-byte messages child -> parent on a bare ring, both
// spinning; messages larger than a quarter ring go as chunks, as WriteMessage
// sends them. The consumer copies every payload out.
Throughput BareRingOneWay(size_t size, bool fence, long count, long warm) {
  BareSegment seg(g_cfg.ring_bytes);
  const uint32_t rounds = static_cast<uint32_t>(1 + std::max<long>(1, g_cfg.tp_reps));
  const long max_per_rep = std::max<long>(1, count / (rounds - 1));
  auto* per_rep = reinterpret_cast<std::atomic<long>*>(seg.base + 3072);
  per_rep->store(max_per_rep);
  const size_t chunk_limit = seg.ring / 4 - grpc_shm::ipc::kFrameHeaderSize;
  std::vector<double> rates;
  ForkRun(
      [&] {
        grpc_shm::ipc::RingReader r(seg.control(0), seg.data(0), seg.ring);
        std::atomic<uint32_t>* peer_wait = seg.wait_word(1);
        std::vector<uint8_t> dst(size + 64);
        FrameView f;
        for (uint32_t round = 1; round <= rounds; ++round) {
          const long n = round == 1 ? warm : per_rep->load(std::memory_order_relaxed);
          const uint64_t t0 = NowNs();
          seg.go()->store(round, std::memory_order_release);
          for (long m = 0; m < n; ++m) {
            size_t off = 0;
            while (off < size) {
              Status s;
              while ((s = r.Peek(&f)).code() == StatusCode::kWouldBlock) Relax();
              Check(s, "bare peek");
              if (off + f.payload_size() > size) Die("bare: message too long");
              f.CopyPayloadTo(dst.data() + off);
              off += f.payload_size();
              r.Consume();
              MaybeFence(fence, peer_wait);
            }
          }
          const uint64_t t1 = NowNs();
          const double rate = static_cast<double>(n) / (static_cast<double>(t1 - t0) * 1e-9);
          if (round > 1) {
            rates.push_back(rate);
          } else {
            per_rep->store(RepCount(rate, max_per_rep), std::memory_order_relaxed);
          }
        }
      },
      [&] {
        seg.Pretouch();
        grpc_shm::ipc::RingWriter w(seg.control(0), seg.data(0), seg.ring);
        std::atomic<uint32_t>* peer_wait = seg.wait_word(0);
        std::vector<uint8_t> src(size, 0x5a);
        const FrameHeader h = MessageHeader();
        for (uint32_t round = 1; round <= rounds; ++round) {
          while (seg.go()->load(std::memory_order_acquire) != round) Relax();
          const long n = round == 1 ? warm : per_rep->load(std::memory_order_relaxed);
          for (long m = 0; m < n; ++m) {
            for (size_t off = 0; off < size;) {
              const ConstByteSpan part{src.data() + off, std::min(size - off, chunk_limit)};
              Status s;
              while ((s = w.TryWrite(h, &part, 1)).code() == StatusCode::kWouldBlock) {
                Relax();
              }
              Check(s, "bare write");
              MaybeFence(fence, peer_wait);
              off += part.size;
            }
          }
        }
      });
  Throughput t;
  FillRates(rates, size, &t);
  return t;
}

// ------------------------------------------------------------------ output

struct Row {
  std::string key;
  std::string label;
  LatencyStats s;
};

struct Target {
  std::string name;
  double value;
  double target;
  bool lower_is_better;
  std::string unit;
  bool pass() const { return lower_is_better ? value <= target : value >= target; }
};

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

void PrintUsage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--json FILE] [--ring-bytes N] [--no-pin] [--rounds N]\n"
               "          [--only KEY,KEY...]\n"
               "  --quick        smoke run (< 20 s), fewer iterations\n"
               "  --json FILE    also write all figures as JSON\n"
               "  --ring-bytes N bytes per ring direction (default %u)\n"
               "  --no-pin       do not pin the two processes to different CPUs\n"
               "  --rounds N     interleaved latency rounds (default 4, quick 2)\n"
               "  --only KEYS    run only these latency scenarios (e.g. raw_spin,ring_spin;\n"
               "                 'paired' for the paired spinning blocks, 'throughput' for\n"
               "                 the one-way runs), print them, stop\n",
               argv0, grpc_shm::ipc::kDefaultRingBytes);
}

}  // namespace

int main(int argc, char** argv) {
  long rounds_arg = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      g_cfg.quick = true;
    } else if (a == "--no-pin") {
      g_cfg.pin = false;
    } else if (a == "--json" && i + 1 < argc) {
      g_cfg.json_path = argv[++i];
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds_arg = std::strtol(argv[++i], nullptr, 0);
    } else if (a == "--only" && i + 1 < argc) {
      g_cfg.only = argv[++i];
    } else if (a == "--ring-bytes" && i + 1 < argc) {
      g_cfg.ring_bytes = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 0));
    } else {
      PrintUsage(argv[0]);
      return a == "--help" || a == "-h" ? 0 : 1;
    }
  }
  if (g_cfg.quick) {
    g_cfg.rt_iters = 20000;
    g_cfg.rt_warmup = 2000;
    g_cfg.rt_rounds = 2;
    g_cfg.rt_warm_budget_ns = 50000000;
    g_cfg.rt_budget_ns = 300000000;
    g_cfg.tp_msgs = 2000000;
    g_cfg.tp_warmup = 100000;
    g_cfg.big_bytes = 512ull << 20;
    g_cfg.big_warmup_bytes = 32ull << 20;
    g_cfg.memcpy_bytes = 512ull << 20;
    g_cfg.scenario_timeout_s = 30;
    g_cfg.tp_rep_budget_s = 0.12;
    g_cfg.paired_blocks = 20;
    g_cfg.paired_per_block = 250;
    g_cfg.tp_rounds = 1;
  }
  if (rounds_arg > 0) g_cfg.rt_rounds = rounds_arg;
  signal(SIGPIPE, SIG_IGN);
  SetUpPinning();
  const uint64_t start = NowNs();

  std::printf("grpc-shm IPC core benchmark (%s mode)\n", g_cfg.quick ? "quick" : "default");
  if (g_parent_cpu >= 0) {
    std::printf(
        "processes: parent (server, timing side) pinned to CPU %d, child (client) to CPU "
        "%d; %d CPUs available\n",
        g_parent_cpu, g_child_cpu, g_ncpus);
  } else {
    std::printf("processes: NOT pinned (%s; %d CPUs available)\n",
                g_cfg.pin ? "fewer than 2 CPUs" : "--no-pin", g_ncpus);
  }
  const std::string load_start = LoadAverage();
  std::printf("load average at start: %s (1/5/15 min, runnable/total tasks)\n", load_start.c_str());
  std::printf("ring: %u bytes per direction requested\n", g_cfg.ring_bytes);
  std::printf(
      "latency: scenarios interleaved in %ld rounds, samples pooled; per scenario up to "
      "%ld timed round trips\n  (fewer where a round's %.1f s budget runs out), each round "
      "after up to %ld warm-up round trips (not counted)\n\n",
      g_cfg.rt_rounds, g_cfg.rt_iters, static_cast<double>(g_cfg.rt_budget_ns) * 1e-9,
      std::max<long>(500, g_cfg.rt_warmup / g_cfg.rt_rounds));
  std::fflush(stdout);

  // The default backend (Linux: memfd + socketpair doorbell), the Linux
  // eventfd and futex doorbells, and the portable POSIX backend (shm_open +
  // socketpair doorbell); all with spin 0, so every wait sleeps.
  ConnectionOptions default_opts = grpc_shm::ipc::DefaultConnectionOptions();
  default_opts.ring_bytes = g_cfg.ring_bytes;
  default_opts.spin = std::chrono::nanoseconds(0);
  ConnectionOptions eventfd_opts = default_opts;
  eventfd_opts.memory = platform::SharedMemoryKind::kMemfd;
  eventfd_opts.doorbell = platform::DoorbellKind::kEventFd;
  ConnectionOptions futex_opts = eventfd_opts;
  futex_opts.doorbell = platform::DoorbellKind::kFutex;
  ConnectionOptions posix_opts = grpc_shm::ipc::PosixConnectionOptions();
  posix_opts.ring_bytes = g_cfg.ring_bytes;
  posix_opts.spin = std::chrono::nanoseconds(0);
  // Spinning: the default backend with a spin so long it never sleeps.
  ConnectionOptions spin_opts = default_opts;
  spin_opts.spin = std::chrono::seconds(1);
  if (g_single_cpu) {
    // The library's spin would hold the only CPU for up to a second.
    spin_opts.spin = std::chrono::nanoseconds(0);
    std::printf(
        "NOTE: only one CPU: busy-waits yield and the client does not spin; spinning "
        "figures are not meaningful\n\n");
  }

  // 1 + 2: latency. The scenarios run interleaved in several rounds and
  // their samples are pooled, so slow drift of the machine (other load, host
  // scheduling) hits every scenario alike.
  struct Scenario {
    std::string key, label;
    std::function<Samples()> run;
    std::vector<uint64_t> samples;
  };
  std::vector<Scenario> scenarios = {
      {"raw_spin", "raw busy-spin ping-pong, bare atomic", RawSpinPingPong, {}},
      {"raw_spin_payload",
       "raw busy-spin, 64 B payload in polled slot",
       RawSpinPayloadPingPong,
       {}},
      {"raw_futex", "raw futex ping-pong, bare atomic", RawFutexPingPong, {}},
      {"raw_eventfd", "raw eventfd ping-pong", RawEventFdPingPong, {}},
      {"ring_spin",
       g_single_cpu ? "ring, 1 CPU: spin 0 (sleeps)" : "ring, spinning (spin 1 s)",
       [&] { return RingRoundTrip(spin_opts); },
       {}},
      {"ring_spin_cold",
       "diag: ring, spinning, first lap (cold pages)",
       [&] { return RingRoundTrip(spin_opts, false); },
       {}},
      {"ring_eventfd",
       "ring, memfd+eventfd, spin 0",
       [&] { return RingRoundTrip(eventfd_opts); },
       {}},
      {"ring_futex", "ring, memfd+futex, spin 0", [&] { return RingRoundTrip(futex_opts); }, {}},
      {"ring_socket",
       "ring, memfd+socket (default), spin 0",
       [&] { return RingRoundTrip(default_opts); },
       {}},
      {"ring_posix",
       "ring, posix shm+socket (POSIX), spin 0",
       [&] { return RingRoundTrip(posix_opts); },
       {}},
      {"bare_ring_spin",
       "diag: bare RingWriter/Reader, spin, no fence",
       [] { return BareRingRoundTrip(false); },
       {}},
      {"bare_ring_spin_fence",
       "diag: bare ring + WakePeerIf's fence",
       [] { return BareRingRoundTrip(true); },
       {}},
  };
  const std::string only_keys = "," + g_cfg.only + ",";
  auto only_has = [&](const std::string& key) {
    return only_keys.find("," + key + ",") != std::string::npos;
  };
  if (!g_cfg.only.empty()) {
    std::vector<Scenario> chosen;
    for (Scenario& sc : scenarios) {
      if (only_has(sc.key)) chosen.push_back(std::move(sc));
    }
    if (chosen.empty() && !only_has("paired") && !only_has("throughput")) {
      Die("--only matched no scenario");
    }
    scenarios = std::move(chosen);
  }
  // The paired spinning blocks (2b) run in every round too, in fresh process
  // pairs, so they see the placements the rest of the run sees.
  const bool run_paired = !g_single_cpu && (g_cfg.only.empty() || only_has("paired"));
  PairedSpin paired;
  {
    const long total_iters = g_cfg.rt_iters;
    const long rounds = g_cfg.rt_rounds;
    g_cfg.rt_iters = total_iters / rounds;
    g_cfg.rt_warmup = std::max<long>(500, g_cfg.rt_warmup / rounds);
    for (long r = 0; r < rounds; ++r) {
      for (Scenario& sc : scenarios) {
        const Samples got = sc.run();
        sc.samples.insert(sc.samples.end(), got.begin(), got.end());
      }
      for (long p = 0; run_paired && p < g_cfg.paired_pairs_per_round; ++p) {
        PairedSpinRoundTrips(spin_opts, g_cfg.paired_blocks, g_cfg.paired_per_block, &paired);
      }
    }
    g_cfg.rt_iters = total_iters;
  }
  std::vector<Row> rows;
  for (Scenario& sc : scenarios) rows.push_back({sc.key, sc.label, Summarize(sc.samples)});
  auto find = [&](const std::string& key) -> const LatencyStats& {
    for (const Row& r : rows) {
      if (r.key == key) return r.s;
    }
    Die("no row " + key);
  };

  std::printf(
      "Round-trip latency, 64-byte message (ns)      mean      p50      p99    p99.9  "
      "samples\n");
  for (const Row& r : rows) {
    std::printf("  %-42s %8.0f %8.0f %8.0f %8.0f %8ld\n", r.label.c_str(), r.s.mean_ns, r.s.p50_ns,
                r.s.p99_ns, r.s.p999_ns, r.s.samples);
  }
  std::printf("\n");
  std::fflush(stdout);

  // 2b: the spinning round trip and its floors in alternating blocks.
  double paired_ratio = 0, paired_q1 = 0, paired_q3 = 0, paired_payload_ratio = 0;
  double batched_ratio = 0, batched_payload_ratio = 0;
  if (run_paired) {
    auto quartiles = [](std::vector<double> v, double* q1, double* q2, double* q3) {
      std::sort(v.begin(), v.end());
      *q1 = v[v.size() / 4];
      *q2 = v[v.size() / 2];
      *q3 = v[v.size() * 3 / 4];
    };
    auto median = [&](const std::vector<double>& v) {
      double a, m, b;
      quartiles(v, &a, &m, &b);
      return m;
    };
    quartiles(paired.single.ratios, &paired_q1, &paired_ratio, &paired_q3);
    paired_payload_ratio = median(paired.single.payload_ratios);
    batched_ratio = median(paired.batched.ratios);
    batched_payload_ratio = median(paired.batched.payload_ratios);
    std::printf(
        "Spinning round trip against its floors, paired: %ld process pairs x %ld blocks; each\n"
        "block times the bare-atomic spin, the 64 B slot spin and the ring (spin 1 s) in\n"
        "rotating order in one process pair, %ld samples each of 1 and of %d round trips\n",
        paired.pairs, g_cfg.paired_blocks, g_cfg.paired_per_block, PairedSpin::kBatch);
    std::printf("  median of per-block p50 ratios      1 round trip/sample    %d per sample\n",
                PairedSpin::kBatch);
    std::printf("  ring / bare atomic                  %5.2fx (%.2fx - %.2fx)   %5.2fx\n",
                paired_ratio, paired_q1, paired_q3, batched_ratio);
    std::printf("  ring / 64 B slot                    %5.2fx                   %5.2fx\n",
                paired_payload_ratio, batched_payload_ratio);
    // The host places the two vCPUs differently from second to second; the
    // bare floor's own p50 (batched: no clock in it) says where a block ran.
    struct Band {
      const char* name;
      double lo, hi;
    };
    const Band bands[] = {
        {"floor < 60 ns", 0, 60}, {"floor 60-250 ns", 60, 250}, {"floor >= 250 ns", 250, 1e18}};
    std::printf("  by placement (bare floor p50, %d/sample)  blocks   vs bare     vs 64 B slot\n",
                PairedSpin::kBatch);
    for (const Band& b : bands) {
      std::vector<double> s_bare, s_slot, b_bare, b_slot;
      for (size_t i = 0; i < paired.batched.raw_p50s.size(); ++i) {
        if (paired.batched.raw_p50s[i] < b.lo || paired.batched.raw_p50s[i] >= b.hi) continue;
        s_bare.push_back(paired.single.ratios[i]);
        s_slot.push_back(paired.single.payload_ratios[i]);
        b_bare.push_back(paired.batched.ratios[i]);
        b_slot.push_back(paired.batched.payload_ratios[i]);
      }
      if (s_bare.empty()) continue;
      std::printf("    %-38s %6zu   %.2f / %.2fx  %.2f / %.2fx\n", b.name, s_bare.size(),
                  median(s_bare), median(b_bare), median(s_slot), median(b_slot));
    }
    std::printf("    (each pair of figures: 1 round trip per sample / %d per sample)\n",
                PairedSpin::kBatch);
    const double k = PairedSpin::kBatch;
    std::printf(
        "  pooled p50 per round trip, 1/sample: bare %.0f ns, 64 B slot %.0f ns, ring %.0f ns\n"
        "                             %d/sample: bare %.1f ns, 64 B slot %.1f ns, ring %.1f ns\n\n",
        Summarize(paired.single.raw).p50_ns, Summarize(paired.single.payload).p50_ns,
        Summarize(paired.single.ring).p50_ns, PairedSpin::kBatch,
        Summarize(paired.batched.raw).p50_ns / k, Summarize(paired.batched.payload).p50_ns / k,
        Summarize(paired.batched.ring).p50_ns / k);
    std::fflush(stdout);
  }
  if (!g_cfg.only.empty() && !only_has("throughput")) return 0;

  // 3: throughput.
  const size_t kKiB64 = 64 << 10;
  const size_t kMiB1 = 1 << 20;
  // In rounds, like the latency scenarios: memory bandwidth on this host
  // drops 3-5x for seconds at a time (other tenants), and the repetitions of
  // one scenario must not all land in one such period. Best and median are
  // over the repetitions of every round; memcpy is measured in each round too.
  Throughput tp64, tp64_sleep, tp64k, tp1m, bare64, bare64_fence;
  double mc64 = 0, mc64k = 0, mc1m = 0, mc64m = 0;
  for (long r = 0; r < g_cfg.tp_rounds; ++r) {
    const long n = g_cfg.tp_rounds;
    tp64 = Merge(tp64, OneWay(spin_opts, 64, g_cfg.tp_msgs / n, g_cfg.tp_warmup));
    tp64_sleep =
        Merge(tp64_sleep, OneWay(default_opts, 64, g_cfg.tp_msgs / 4 / n, g_cfg.tp_warmup / 4));
    tp64k = Merge(tp64k, OneWay(spin_opts, kKiB64, static_cast<long>(g_cfg.big_bytes / kKiB64) / n,
                                static_cast<long>(g_cfg.big_warmup_bytes / kKiB64)));
    tp1m = Merge(tp1m, OneWay(spin_opts, kMiB1, static_cast<long>(g_cfg.big_bytes / kMiB1) / n,
                              static_cast<long>(g_cfg.big_warmup_bytes / kMiB1)));
    bare64 = Merge(bare64, BareRingOneWay(64, false, g_cfg.tp_msgs / n, g_cfg.tp_warmup));
    bare64_fence =
        Merge(bare64_fence, BareRingOneWay(64, true, g_cfg.tp_msgs / n, g_cfg.tp_warmup));
    mc64 = std::max(mc64, MemcpyGBs(64, g_cfg.memcpy_bytes / 8 / n));
    mc64k = std::max(mc64k, MemcpyGBs(kKiB64, g_cfg.memcpy_bytes / n));
    mc1m = std::max(mc1m, MemcpyGBs(kMiB1, g_cfg.memcpy_bytes / n));
    mc64m = std::max(mc64m, MemcpyGBs(64 << 20, g_cfg.memcpy_bytes / 2 / n));
  }

  std::printf(
      "One-way throughput, child -> parent, payload copied out; best (median) of %ld "
      "reps in %ld rounds (each <= %.2f s, after a warm-up)\n",
      g_cfg.tp_reps * g_cfg.tp_rounds, g_cfg.tp_rounds, g_cfg.tp_rep_budget_s);
  std::printf("  %-48s %18s %16s %s\n", "", "msgs/s", "GB/s", "sleeps/msg cons/prod");
  auto tp_row = [](const char* label, const Throughput& t, bool cs) {
    char rate[64], gbs[64];
    if (t.best_msgs_per_s >= 1e5) {
      std::snprintf(rate, sizeof(rate), "%.2fM (%.2fM)", t.best_msgs_per_s * 1e-6,
                    t.median_msgs_per_s * 1e-6);
    } else {
      std::snprintf(rate, sizeof(rate), "%.0f (%.0f)", t.best_msgs_per_s, t.median_msgs_per_s);
    }
    std::snprintf(gbs, sizeof(gbs), "%.2f (%.2f)", t.best_gb_per_s, t.median_gb_per_s);
    std::printf("  %-48s %18s %16s", label, rate, gbs);
    if (cs) std::printf(" %.4f / %.4f", t.parent_cs_per_msg, t.child_cs_per_msg);
    std::printf("\n");
  };
  tp_row("64 B, spinning producer and consumer", tp64, true);
  tp_row("64 B, default backend, spin 0 (sleeping wakeups)", tp64_sleep, true);
  tp_row("64 KiB, spinning (WriteMessage / Peek+copy)", tp64k, true);
  tp_row("1 MiB, spinning (WriteMessage / Peek+copy)", tp1m, true);
  tp_row("diag: 64 B, bare RingWriter/Reader, no fence", bare64, false);
  tp_row("diag: 64 B, bare ring + WakePeerIf's fence", bare64_fence, false);
  std::printf("Single-core memcpy (same run)                                          GB/s\n");
  std::printf("  %-56s %20.2f\n", "memcpy 64 B blocks", mc64);
  std::printf("  %-56s %20.2f\n", "memcpy 64 KiB blocks (cache-resident)", mc64k);
  std::printf("  %-56s %20.2f\n", "memcpy 1 MiB blocks", mc1m);
  std::printf("  %-56s %20.2f\n", "memcpy 64 MiB blocks (DRAM, for reference)", mc64m);
  std::printf("\n");
  if (!g_cfg.only.empty()) return 0;

  // 4: targets.
  const LatencyStats& futex_floor = find("raw_futex");
  const LatencyStats& spin_floor = find("raw_spin");
  std::vector<Target> targets = {
      {"sleeping RT (default, socket doorbell) p50 / futex p50",
       find("ring_socket").p50_ns / futex_floor.p50_ns, 1.5, true, "x"},
      {"sleeping RT (futex doorbell) p50 / raw futex p50",
       find("ring_futex").p50_ns / futex_floor.p50_ns, 1.5, true, "x"},
      {"sleeping RT (eventfd doorbell) p50 / raw futex p50",
       find("ring_eventfd").p50_ns / futex_floor.p50_ns, 1.5, true, "x"},
      {g_single_cpu ? "spinning RT p50 / raw spin p50 (1 CPU: not meaningful)"
                    : "spinning RT p50 / raw spin p50 (paired blocks)",
       g_single_cpu ? find("ring_spin").p50_ns / spin_floor.p50_ns : paired_ratio, 2.0, true, "x"},
      {"64 B one-way, spinning consumer (M msgs/s)", tp64.best_msgs_per_s * 1e-6, 10.0, false,
       "M/s"},
      {"64 KiB bandwidth / memcpy 64 KiB", tp64k.best_gb_per_s / mc64k, 0.5, false, ""},
      {"1 MiB bandwidth / memcpy 1 MiB", tp1m.best_gb_per_s / mc1m, 0.5, false, ""},
  };
  std::printf(
      "Targets (issue 2)                                          value    target  result\n");
  for (const Target& t : targets) {
    std::string tgt = (t.lower_is_better ? "<= " : ">= ");
    char buf[32];
    if (t.unit == "x") {
      std::snprintf(buf, sizeof(buf), "%.2fx", t.target);
    } else if (t.unit.empty()) {
      std::snprintf(buf, sizeof(buf), "%.0f%%", t.target * 100);
    } else {
      std::snprintf(buf, sizeof(buf), "%.0f", t.target);
    }
    tgt += buf;
    char val[32];
    if (t.unit == "x") {
      std::snprintf(val, sizeof(val), "%.2fx", t.value);
    } else if (t.unit.empty()) {
      std::snprintf(val, sizeof(val), "%.0f%%", t.value * 100);
    } else {
      std::snprintf(val, sizeof(val), "%.2f", t.value);
    }
    std::printf("  %-54s %8s %9s  %s\n", t.name.c_str(), val, tgt.c_str(),
                t.pass() ? "PASS" : "MISS");
  }
  if (!g_single_cpu) {
    std::printf(
        "  (spinning RT, paired blocks: %.2fx the 64 B slot spin, which carries the same\n"
        "  payload with no framing; timing %d round trips per sample, %.2fx the bare atomic\n"
        "  and %.2fx the 64 B slot)\n",
        paired_payload_ratio, PairedSpin::kBatch, batched_ratio, batched_payload_ratio);
  }
  std::printf("  (spinning RT p50 / raw spin p50, pooled over the interleaved rounds: %.2fx)\n",
              find("ring_spin").p50_ns / spin_floor.p50_ns);
  std::printf("  (spinning RT p50 / raw spin with 64 B payload p50: %.2fx)\n",
              find("ring_spin").p50_ns / find("raw_spin_payload").p50_ns);
  std::printf("  (mean ratios: socket %.2fx, futex %.2fx, eventfd %.2fx, spin %.2fx)\n",
              find("ring_socket").mean_ns / futex_floor.mean_ns,
              find("ring_futex").mean_ns / futex_floor.mean_ns,
              find("ring_eventfd").mean_ns / futex_floor.mean_ns,
              find("ring_spin").mean_ns / spin_floor.mean_ns);
  const double elapsed = static_cast<double>(NowNs() - start) * 1e-9;
  const std::string load_end = LoadAverage();
  const long preempt_parent = Preemptions(RUSAGE_SELF);
  const long preempt_children = Preemptions(RUSAGE_CHILDREN);
  std::printf(
      "\npreemptions (involuntary context switches) during the run: parent %ld, children "
      "%ld%s",
      preempt_parent, preempt_children,
      static_cast<double>(preempt_parent + preempt_children) > 50.0 * elapsed
          ? "\n  WARNING: other work competed for the CPUs; spinning figures and "
            "throughput are pessimistic"
          : "");
  std::printf("\nload average at end: %s; total time %.1f s\n", load_end.c_str(), elapsed);

  if (!g_cfg.json_path.empty()) {
    FILE* out = std::fopen(g_cfg.json_path.c_str(), "w");
    if (!out) Die("cannot write " + g_cfg.json_path);
    std::fprintf(out, "{\n  \"mode\": \"%s\",\n  \"parent_cpu\": %d,\n  \"child_cpu\": %d,\n",
                 g_cfg.quick ? "quick" : "default", g_parent_cpu, g_child_cpu);
    std::fprintf(out, "  \"cpus\": %d,\n  \"ring_bytes\": %u,\n  \"latency_ns\": {\n", g_ncpus,
                 g_cfg.ring_bytes);
    for (size_t i = 0; i < rows.size(); ++i) {
      const LatencyStats& s = rows[i].s;
      std::fprintf(out,
                   "    \"%s\": {\"label\": \"%s\", \"samples\": %ld, \"mean\": %.1f, \"p50\": "
                   "%.1f, \"p99\": %.1f, \"p999\": %.1f, \"min\": %.1f, \"max\": %.1f}%s\n",
                   rows[i].key.c_str(), JsonEscape(rows[i].label).c_str(), s.samples, s.mean_ns,
                   s.p50_ns, s.p99_ns, s.p999_ns, s.min_ns, s.max_ns,
                   i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(out,
                 "  },\n  \"paired_spin\": {\"pairs\": %ld, \"blocks\": %ld, \"per_block\": %ld, "
                 "\"ratio_median\": %.3f, \"ratio_q1\": %.3f, \"ratio_q3\": %.3f, "
                 "\"ratio_vs_64b_slot_median\": %.3f, \"batched_ratio_median\": %.3f, "
                 "\"batched_ratio_vs_64b_slot_median\": %.3f, \"raw_p50\": %.1f, "
                 "\"ring_p50\": %.1f},\n",
                 paired.pairs, g_cfg.paired_blocks, g_cfg.paired_per_block, paired_ratio, paired_q1,
                 paired_q3, paired_payload_ratio, batched_ratio, batched_payload_ratio,
                 Summarize(paired.single.raw).p50_ns, Summarize(paired.single.ring).p50_ns);
    std::fprintf(out, "  \"throughput\": {\n");
    std::fprintf(out, "    \"msg64_spin_msgs_per_s\": %.0f,\n", tp64.best_msgs_per_s);
    std::fprintf(out, "    \"msg64_default_sleep_msgs_per_s\": %.0f,\n",
                 tp64_sleep.best_msgs_per_s);
    std::fprintf(out, "    \"msg64_default_sleep_sleeps_per_msg\": [%.5f, %.5f],\n",
                 tp64_sleep.parent_cs_per_msg, tp64_sleep.child_cs_per_msg);
    std::fprintf(out, "    \"diag_bare_ring_msg64_msgs_per_s\": %.0f,\n", bare64.best_msgs_per_s);
    std::fprintf(out, "    \"diag_bare_ring_fence_msg64_msgs_per_s\": %.0f,\n",
                 bare64_fence.best_msgs_per_s);
    std::fprintf(out, "    \"msg64k_spin_gb_per_s\": %.3f,\n", tp64k.best_gb_per_s);
    std::fprintf(out, "    \"msg1m_spin_gb_per_s\": %.3f,\n", tp1m.best_gb_per_s);
    std::fprintf(out, "    \"memcpy64_gb_per_s\": %.3f,\n", mc64);
    std::fprintf(out, "    \"memcpy64k_gb_per_s\": %.3f,\n", mc64k);
    std::fprintf(out, "    \"memcpy1m_gb_per_s\": %.3f,\n", mc1m);
    std::fprintf(out, "    \"memcpy64m_gb_per_s\": %.3f\n  },\n  \"targets\": [\n", mc64m);
    for (size_t i = 0; i < targets.size(); ++i) {
      const Target& t = targets[i];
      std::fprintf(out,
                   "    {\"name\": \"%s\", \"value\": %.4f, \"target\": %.4f, \"lower_is_better\": "
                   "%s, \"pass\": %s}%s\n",
                   JsonEscape(t.name).c_str(), t.value, t.target,
                   t.lower_is_better ? "true" : "false", t.pass() ? "true" : "false",
                   i + 1 < targets.size() ? "," : "");
    }
    std::fprintf(out, "  ],\n  \"load_start\": \"%s\",\n  \"load_end\": \"%s\",\n",
                 load_start.c_str(), load_end.c_str());
    std::fprintf(out, "  \"preemptions\": {\"parent\": %ld, \"children\": %ld},\n", preempt_parent,
                 preempt_children);
    std::fprintf(out, "  \"seconds\": %.1f\n}\n", elapsed);
    std::fclose(out);
  }
  return 0;
}
