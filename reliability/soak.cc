// The soak test: one server and several client processes, each client with
// a few threads running a random mix of unary, server-, client- and
// bidi-streaming calls, small and multi-megabyte messages, on channels it
// opens and closes all the time. Every message carries the CRC-32 of its
// payload ("crc:<hex>" in `message`), checked at the other end. The driver
// samples RSS, descriptors, threads and memfd mappings of every process
// once a second and, after a warm-up, fits a line through each series: the
// test passes when no call was lost or failed, no checksum mismatched, and
// no series grows over the run by more than its tolerance.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "reliability/child_process.h"
#include "reliability/peer_common.h"
#include "reliability/process_usage.h"

namespace grpc_shm {
namespace reliability {
namespace {

using grpc::ClientContext;
using grpc::Status;
using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;
using grpc_shm::test::EchoTest;

struct Tally {
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> failed{0};   // a call that did not end OK
  std::atomic<int64_t> corrupt{0};  // a checksum or an echo that did not match
  std::atomic<int64_t> lost{0};     // a message missing from a stream
  std::atomic<int64_t> messages{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> channels{0};
};

class SoakWorker {
 public:
  SoakWorker(std::string address, uint64_t seed, Tally* tally)
      : address_(std::move(address)), rng_(seed), tally_(tally) {}

  void Run(std::chrono::steady_clock::time_point until) {
    int calls_left_on_channel = 0;
    std::unique_ptr<EchoTest::Stub> stub;
    while (std::chrono::steady_clock::now() < until) {
      if (calls_left_on_channel-- <= 0) {
        // Opens a new channel (with its own connection) and drops the old.
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        args.SetMaxReceiveMessageSize(128 << 20);
        args.SetMaxSendMessageSize(128 << 20);
        stub = EchoTest::NewStub(
            grpc::CreateCustomChannel(address_, grpc_shm::ChannelCredentials(), args));
        tally_->channels++;
        calls_left_on_channel = 1 + static_cast<int>(Next() % 100);
      }
      ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      ctx.set_wait_for_ready(true);
      Status status;
      uint64_t pick = Next() % 100;
      std::string what;
      if (pick < 40) {
        what = "unary";
        status = Unary(stub.get(), &ctx, Size(16 * 1024));
      } else if (pick < 43) {
        what = "large unary";
        status = Unary(stub.get(), &ctx, (1 << 20) + Size(5 << 20));
      } else if (pick < 63) {
        what = "server stream";
        status = ServerStream(stub.get(), &ctx);
      } else if (pick < 80) {
        what = "client stream";
        status = ClientStream(stub.get(), &ctx);
      } else {
        what = "bidi";
        status = Bidi(stub.get(), &ctx);
      }
      tally_->calls++;
      if (!status.ok()) {
        tally_->failed++;
        Say("LOST %s call: %d %s", what.c_str(), static_cast<int>(status.error_code()),
            status.error_message().c_str());
      }
    }
  }

 private:
  uint64_t Next() { return NextRandom(&rng_); }
  size_t Size(size_t max) { return static_cast<size_t>(Next() % (max + 1)); }

  EchoRequest Request(size_t bytes) {
    EchoRequest req;
    req.set_payload(RandomPayload(bytes, &rng_));
    req.set_message(ChecksumTag(req.payload()));
    tally_->messages++;
    tally_->bytes += static_cast<int64_t>(bytes);
    return req;
  }

  // A response must carry the checksum of its payload and, for an echo,
  // the request's payload.
  void Check(const EchoResponse& resp, const std::string* echoed) {
    tally_->messages++;
    tally_->bytes += static_cast<int64_t>(resp.payload().size());
    bool ok = ChecksumMatches(resp.message(), resp.payload()) &&
              (echoed == nullptr || *echoed == resp.payload());
    if (!ok) {
      tally_->corrupt++;
      Say("CORRUPT response of %zu bytes", resp.payload().size());
    }
  }

  Status Unary(EchoTest::Stub* stub, ClientContext* ctx, size_t bytes) {
    EchoRequest req = Request(bytes);
    EchoResponse resp;
    Status status = stub->Unary(ctx, req, &resp);
    if (status.ok()) Check(resp, &req.payload());
    return status;
  }

  Status ServerStream(EchoTest::Stub* stub, ClientContext* ctx) {
    EchoRequest req = Request(Size(1024));
    req.set_count(1 + static_cast<int>(Next() % 50));
    req.set_response_bytes(1 + static_cast<int64_t>(Size(32 * 1024)));
    auto reader = stub->ServerStream(ctx, req);
    EchoResponse resp;
    int got = 0;
    while (reader->Read(&resp)) {
      Check(resp, nullptr);
      ++got;
    }
    Status status = reader->Finish();
    if (status.ok() && got != req.count()) {
      tally_->lost += req.count() - got;
      Say("LOST %d of %d server-stream responses", req.count() - got, req.count());
    }
    return status;
  }

  Status ClientStream(EchoTest::Stub* stub, ClientContext* ctx) {
    EchoResponse resp;
    auto writer = stub->ClientStream(ctx, &resp);
    int sent = 1 + static_cast<int>(Next() % 50);
    for (int i = 0; i < sent; ++i) {
      if (!writer->Write(Request(Size(32 * 1024)))) break;
    }
    writer->WritesDone();
    Status status = writer->Finish();
    if (status.ok() && resp.received() != sent) {
      tally_->lost += sent - resp.received();
      Say("LOST %d of %d client-stream messages", sent - resp.received(), sent);
    }
    return status;
  }

  Status Bidi(EchoTest::Stub* stub, ClientContext* ctx) {
    auto stream = stub->Bidi(ctx);
    int rounds = 1 + static_cast<int>(Next() % 50);
    for (int i = 0; i < rounds; ++i) {
      EchoRequest req = Request(Size(16 * 1024));
      EchoResponse resp;
      if (!stream->Write(req)) break;
      if (!stream->Read(&resp)) {
        tally_->lost++;
        break;
      }
      Check(resp, &req.payload());
    }
    stream->WritesDone();
    return stream->Finish();
  }

  std::string address_;
  uint64_t rng_;
  Tally* tally_;
};

// Least-squares slope of `v` against its index (units per sample).
double Slope(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  if (v.size() < 2) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    double x = static_cast<double>(i);
    sx += x;
    sy += v[i];
    sxx += x * x;
    sxy += x * v[i];
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

// Flags: --address=shm:... --seconds=N --threads=N --seed=N
// Prints "RESULT calls=.. failed=.. corrupt=.. lost=.. messages=.. bytes=..
// channels=.." at the end.
int RunSoakClient(int argc, char** argv) {
  const std::string address = Flag(argc, argv, "address", "");
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(IntFlag(argc, argv, "seconds", 60));
  const int threads = static_cast<int>(IntFlag(argc, argv, "threads", 3));
  const uint64_t seed = static_cast<uint64_t>(IntFlag(argc, argv, "seed", 1));
  Tally tally;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] { SoakWorker(address, seed * 1000 + i + 1, &tally).Run(until); });
  }
  for (auto& t : workers) t.join();
  Say("RESULT calls=%lld failed=%lld corrupt=%lld lost=%lld messages=%lld bytes=%lld "
      "channels=%lld",
      static_cast<long long>(tally.calls.load()), static_cast<long long>(tally.failed.load()),
      static_cast<long long>(tally.corrupt.load()), static_cast<long long>(tally.lost.load()),
      static_cast<long long>(tally.messages.load()), static_cast<long long>(tally.bytes.load()),
      static_cast<long long>(tally.channels.load()));
  std::_Exit(0);
}

// Flags: [--seconds=N] [--clients=N] [--threads=N] [--seed=S] [--log-dir=DIR]
//        [--warmup-seconds=N] (default: a quarter of the run, at least 10)
int RunSoak(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const int64_t seconds = IntFlag(argc, argv, "seconds", 600);
  const int clients = static_cast<int>(IntFlag(argc, argv, "clients", 4));
  const int threads = static_cast<int>(IntFlag(argc, argv, "threads", 3));
  const int64_t warmup = IntFlag(argc, argv, "warmup-seconds", std::max<int64_t>(10, seconds / 4));
  uint64_t seed = static_cast<uint64_t>(IntFlag(argc, argv, "seed", 0));
  if (seed == 0) seed = static_cast<uint64_t>(std::random_device{}()) << 20 ^ getpid();
  std::string log_dir = Flag(argc, argv, "log-dir", "");
  if (log_dir.empty()) {
    char tmpl[] = "/tmp/grpc-shm-soak.XXXXXX";
    log_dir = mkdtemp(tmpl) != nullptr ? tmpl : "/tmp";
  }
  mkdir(log_dir.c_str(), 0700);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 2;
  self[n] = '\0';
  char dir_tmpl[] = "/tmp/grpc-shm-soak-sock.XXXXXX";
  if (mkdtemp(dir_tmpl) == nullptr) return 2;
  const std::string sock_dir = dir_tmpl;
  const std::string address = "shm://" + sock_dir + "/s.sock";
  std::printf(
      "soak: seed %llu, %lld s, %d clients x %d threads, warm-up %lld s, samples and "
      "logs in %s\n",
      static_cast<unsigned long long>(seed), static_cast<long long>(seconds), clients, threads,
      static_cast<long long>(warmup), log_dir.c_str());
  std::fflush(stdout);

  ChildProcess server({self, "server", "--address=" + address, "--report-handlers=0"}, {},
                      log_dir + "/server.log");
  std::string line;
  if (!server.ReadUntil("READY", &line, std::chrono::seconds(60))) {
    std::printf("soak FAILED: the server did not start\n");
    return 1;
  }
  std::vector<std::unique_ptr<ChildProcess>> procs;
  for (int i = 0; i < clients; ++i) {
    procs.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{
            self, "soak-client", "--address=" + address, "--seconds=" + std::to_string(seconds),
            "--threads=" + std::to_string(threads),
            "--seed=" + std::to_string((seed + static_cast<uint64_t>(i)) & 0x7fffffffffff)},
        std::vector<std::string>{}, log_dir + "/client-" + std::to_string(i) + ".log"));
  }
  // samples[p][metric]: p 0 is the server, 1.. the clients.
  const char* const kMetrics[] = {"rss_kib", "fds", "threads", "memfd_maps"};
  std::vector<std::vector<std::vector<double>>> samples(static_cast<size_t>(clients) + 1,
                                                        std::vector<std::vector<double>>(4));
  std::ofstream csv(log_dir + "/samples.csv");
  csv << "second,process,rss_kib,fds,threads,memfd_maps\n";
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 1; s <= seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    for (size_t p = 0; p <= static_cast<size_t>(clients); ++p) {
      pid_t pid = p == 0 ? server.pid() : procs[p - 1]->pid();
      ProcessUsage u = UsageOf(pid);
      csv << s << "," << (p == 0 ? "server" : "client" + std::to_string(p - 1)) << "," << u.rss_kib
          << "," << u.descriptors << "," << u.threads << "," << u.memfd_mappings << "\n";
      if (s <= warmup) continue;
      samples[p][0].push_back(static_cast<double>(u.rss_kib));
      samples[p][1].push_back(u.descriptors);
      samples[p][2].push_back(u.threads);
      samples[p][3].push_back(u.memfd_mappings);
    }
  }
  csv.close();

  bool ok = true;
  int64_t totals[7] = {0};
  const char* const kTotals[] = {"calls",    "failed", "corrupt", "lost",
                                 "messages", "bytes",  "channels"};
  for (int i = 0; i < clients; ++i) {
    std::vector<std::string> other;
    if (!procs[static_cast<size_t>(i)]->ReadUntil("RESULT", &line, std::chrono::seconds(180),
                                                  &other)) {
      std::printf("  client %d: no result (calls hang?)\n", i);
      ok = false;
      continue;
    }
    for (const auto& l : other) std::printf("  client %d: %s\n", i, l.c_str());
    std::istringstream in(line.substr(7));
    for (std::string kv; in >> kv;) {
      size_t eq = kv.find('=');
      for (int k = 0; k < 7; ++k) {
        if (kv.substr(0, eq) == kTotals[k]) totals[k] += std::stoll(kv.substr(eq + 1));
      }
    }
  }
  server.Send("stats");
  int64_t server_corrupt = -1;
  if (server.ReadUntil("STATS", &line, std::chrono::seconds(60))) {
    server_corrupt = std::stoll(line.substr(line.find("corrupt=") + 8));
  }
  server.Send("quit");
  server.ReadUntil("BYE", &line, std::chrono::seconds(60));
  rmdir(sock_dir.c_str());

  std::printf("soak: %lld calls, %lld messages, %.1f MiB, %lld channels opened and closed\n",
              static_cast<long long>(totals[0]), static_cast<long long>(totals[4]),
              static_cast<double>(totals[5]) / (1 << 20), static_cast<long long>(totals[6]));
  std::printf(
      "  failed calls %lld, lost messages %lld, checksum mismatches %lld (client) + %lld "
      "(server)\n",
      static_cast<long long>(totals[1]), static_cast<long long>(totals[3]),
      static_cast<long long>(totals[2]), static_cast<long long>(server_corrupt));
  if (totals[0] == 0 || totals[1] != 0 || totals[2] != 0 || totals[3] != 0 || server_corrupt != 0) {
    ok = false;
  }
  // Growth over the measured window, predicted by the fitted slope, against
  // a tolerance: a quarter of the series' median, at least 16 MiB of RSS or
  // 4 descriptors/threads/mappings (channels open and close all the time, so
  // counts move by a few from one sample to the next).
  std::printf(
      "  after %lld s warm-up, %zu samples per series: median (least-squares slope per "
      "minute)\n",
      static_cast<long long>(warmup), samples[0][0].size());
  for (size_t p = 0; p < samples.size(); ++p) {
    std::string name = p == 0 ? "server" : "client " + std::to_string(p - 1);
    std::printf("    %-9s", name.c_str());
    for (size_t m = 0; m < 4; ++m) {
      const auto& v = samples[p][m];
      double slope = Slope(v);
      double growth = slope * static_cast<double>(v.size());
      double floor = m == 0 ? 16 * 1024 : 4;
      double tolerance = std::max(floor, Median(v) / 4);
      bool rising = growth > tolerance;
      if (rising) ok = false;
      std::printf("  %s %.0f (%+.1f/min)%s", kMetrics[m], Median(v), slope * 60,
                  rising ? " RISING" : "");
    }
    std::printf("\n");
  }
  std::printf("soak %s\n", ok ? "PASSED" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace reliability
}  // namespace grpc_shm
