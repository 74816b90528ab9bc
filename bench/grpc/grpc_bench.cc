// gRPC-level benchmark: the same service, payloads, API and process layout
// over every transport, so the numbers can be compared within one run.
//
//   grpc_bench server --transport=tcp|uds|shm --address=ADDR
//       serves BenchService; prints "READY <pid> <address>" once it listens and
//       exits when its standard input closes.
//       --also_listen=A,B adds listeners on gRPC's own transports (UDS, TCP).
//   grpc_bench client --transport=tcp|uds|shm --address=ADDR --server_pid=PID [--quick]
//   grpc_bench inproc [--quick]        server and client in one process
//   grpc_bench flood --address=shm://... --connections=N
//       N raw IPC connections that keep the server reading cheap frames (the
//       fairness scenario starts it); prints "FLOODING" once all are
//       connected and, when its standard input closes, "FLOODED <frames>
//       <seconds> <connections lost>".
//
// The client prints one line per figure:
//   RESULT <transport> <scenario> <param> <metric> <value>
// and one line per measurement that calls failed in (it then reports no
// latency or throughput figure, and the client exits with status 1):
//   FAILED <transport> <scenario> <param> <failed calls> <what>
// bench/run.sh collects them, repeats runs, and writes the report.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench.grpc.pb.h"
#ifdef GRPC_SHM_HAVE_TRANSPORT
#include "grpc_shm/grpc_shm.h"
#include "plugin/ipc/connection.h"
#include "plugin/ipc/frame_format.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using grpc_shm::bench::BenchService;
using grpc_shm::bench::Payload;
using grpc_shm::bench::Summary;
#ifdef GRPC_SHM_HAVE_TRANSPORT
namespace ipc = grpc_shm::ipc;
#endif

// ------------------------------------------------------------------ options

struct Flags {
  std::string mode;
  std::string transport = "tcp";
  std::string address;
  pid_t server_pid = -1;
  bool quick = false;
  int spin_us = -1;  // -1: the library's default spin budget
  int ring_kib = 0;  // 0: the library's default ring size
  std::string scenarios = "all";
  int connections = 1;  // flood mode
  // server: more listening addresses (gRPC's own transports), comma-separated,
  // for the layout users deploy: one server on shm, UDS and TCP at once.
  std::string also_listen;
  std::string label;  // client: the transport name in RESULT lines, if not --transport
  // client, large scenario: the sizes in MiB (comma-separated) and, if > 0,
  // the calls per size; for profiling one size.
  std::string large_mib = "1,16,64";
  int large_calls = 0;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  if (argc > 1) f.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return a.compare(0, prefix.size(), prefix) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("transport"))
      f.transport = v;
    else if (const char* v = value("address"))
      f.address = v;
    else if (const char* v = value("server_pid"))
      f.server_pid = std::atoi(v);
    else if (const char* v = value("spin_us"))
      f.spin_us = std::atoi(v);
    else if (const char* v = value("ring_kib"))
      f.ring_kib = std::atoi(v);
    else if (const char* v = value("scenarios"))
      f.scenarios = v;
    else if (const char* v = value("connections"))
      f.connections = std::atoi(v);
    else if (const char* v = value("also_listen"))
      f.also_listen = v;
    else if (const char* v = value("label"))
      f.label = v;
    else if (const char* v = value("large_mib"))
      f.large_mib = v;
    else if (const char* v = value("large_calls"))
      f.large_calls = std::atoi(v);
    else if (a == "--quick")
      f.quick = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
}

bool Wants(const Flags& f, const std::string& scenario) {
  return f.scenarios == "all" ||
         ("," + f.scenarios + ",").find("," + scenario + ",") != std::string::npos;
}

// ------------------------------------------------------------------ service

class BenchServiceImpl final : public BenchService::Service {
  grpc::Status Unary(grpc::ServerContext*, const Payload* req, Payload* resp) override {
    if (!req->empty_reply()) resp->set_body(req->body());
    return grpc::Status::OK;
  }
  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<Payload>* reader,
                            Summary* summary) override {
    Payload p;
    uint64_t n = 0, bytes = 0;
    while (reader->Read(&p)) {
      ++n;
      bytes += p.body().size();
    }
    summary->set_messages(n);
    summary->set_bytes(bytes);
    return grpc::Status::OK;
  }
  grpc::Status Bidi(grpc::ServerContext*,
                    grpc::ServerReaderWriter<Payload, Payload>* stream) override {
    Payload p;
    while (stream->Read(&p)) {
      if (!stream->Write(p)) break;
    }
    return grpc::Status::OK;
  }
};

#ifdef GRPC_SHM_HAVE_TRANSPORT
grpc_shm::ShmOptions ShmOptionsFor(const Flags& f) {
  grpc_shm::ShmOptions o;
  if (f.spin_us >= 0) o.spin_budget = std::chrono::microseconds(f.spin_us);
  if (f.ring_kib > 0) o.ring_bytes = static_cast<uint32_t>(f.ring_kib) << 10;
  return o;
}
#endif

std::shared_ptr<grpc::ServerCredentials> ServerCredsFor(const Flags& f) {
#ifdef GRPC_SHM_HAVE_TRANSPORT
  if (f.transport == "shm") return grpc_shm::ServerCredentials(ShmOptionsFor(f));
#endif
  if (f.transport == "shm") {
    std::fprintf(stderr, "built without the shm transport\n");
    std::exit(2);
  }
  return grpc::InsecureServerCredentials();
}

void RaiseFileLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

void ConfigureServer(grpc::ServerBuilder& b, BenchServiceImpl* service) {
  b.RegisterService(service);
  b.SetMaxReceiveMessageSize(-1);
  b.SetMaxSendMessageSize(-1);
}

int RunServer(const Flags& f) {
  RaiseFileLimit();
  BenchServiceImpl service;
  grpc::ServerBuilder builder;
  ConfigureServer(builder, &service);
  int port = 0;
  builder.AddListeningPort(f.address, ServerCredsFor(f), &port);
  std::stringstream extra(f.also_listen);
  for (std::string a; std::getline(extra, a, ',');) {
    if (!a.empty()) builder.AddListeningPort(a, grpc::InsecureServerCredentials());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "server failed to start on %s\n", f.address.c_str());
    return 1;
  }
  std::string address = f.address;
  if (f.transport == "tcp") address = "127.0.0.1:" + std::to_string(port);
  std::printf("READY %d %s\n", static_cast<int>(getpid()), address.c_str());
  std::fflush(stdout);
  char buf[64];
  while (::read(0, buf, sizeof(buf)) > 0) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

// ------------------------------------------------------------------ client side

struct Target {
  std::string transport;  // also the name in RESULT lines unless flags.label is set
  std::string address;
  grpc::Server* inproc_server = nullptr;  // inproc only
  Flags flags;
};

std::shared_ptr<grpc::Channel> NewChannel(const Target& t) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Every channel gets its own connection, as separate client processes would.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (t.inproc_server != nullptr) return t.inproc_server->InProcessChannel(args);
#ifdef GRPC_SHM_HAVE_TRANSPORT
  if (t.transport == "shm") {
    return grpc::CreateCustomChannel(t.address,
                                     grpc_shm::ChannelCredentials(ShmOptionsFor(t.flags)), args);
  }
#endif
  return grpc::CreateCustomChannel(t.address, grpc::InsecureChannelCredentials(), args);
}

void Report(const Target& t, const std::string& scenario, const std::string& param,
            const std::string& metric, double value) {
  const std::string& name = t.flags.label.empty() ? t.transport : t.flags.label;
  std::printf("RESULT %s %s %s %s %.6g\n", name.c_str(), scenario.c_str(), param.c_str(),
              metric.c_str(), value);
  std::fflush(stdout);
}

// Measurements that had failed calls. A failed call is never counted as a
// completed one and its measurement reports no latency or throughput figure,
// so a broken transport cannot pass for a fast one; the client exits non-zero
// if any failed.
std::atomic<int> g_failed_measurements{0};

void ReportFailure(const Target& t, const std::string& scenario, const std::string& param,
                   uint64_t failed_calls, const std::string& what) {
  const std::string& name = t.flags.label.empty() ? t.transport : t.flags.label;
  std::printf("FAILED %s %s %s %llu %s\n", name.c_str(), scenario.c_str(), param.c_str(),
              static_cast<unsigned long long>(failed_calls), what.c_str());
  std::fflush(stdout);
  ++g_failed_measurements;
}

std::string SizeName(size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

bool CallUnary(BenchService::Stub& stub, const Payload& req, Payload* resp) {
  grpc::ClientContext ctx;
  grpc::Status s = stub.Unary(&ctx, req, resp);
  if (!s.ok()) {
    std::fprintf(stderr, "unary failed: %d %s\n", s.error_code(), s.error_message().c_str());
  }
  return s.ok();
}

// Latencies (us) of `n` sync unary calls, one outstanding, after a warm-up.
// `*failed` counts the calls that failed, warm-up included; those have no
// latency. Stops early once a tenth of the calls have failed.
std::vector<double> UnaryLatencies(BenchService::Stub& stub, const Payload& req, int n,
                                   uint64_t* failed) {
  Payload resp;
  *failed = 0;
  for (int i = 0; i < n / 10 + 5; ++i) {  // warm-up
    if (!CallUnary(stub, req, &resp)) ++*failed;
  }
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n && *failed <= static_cast<uint64_t>(n / 10); ++i) {
    auto start = Clock::now();
    if (!CallUnary(stub, req, &resp)) {
      ++*failed;
      continue;
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return us;
}

// 1. Unary latency, sync API, one call outstanding.
void UnaryLatency(const Target& t, bool quick) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  for (size_t size : {size_t{32}, size_t{4096}, size_t{65536}, size_t{1} << 20}) {
    const int n = quick ? (size >= (1u << 20) ? 20 : 300)
                        : (size >= (1u << 20) ? 300
                           : size >= 65536    ? 2000
                                              : 10000);
    Payload req;
    req.set_body(std::string(size, 'x'));
    uint64_t failed = 0;
    const std::vector<double> us = UnaryLatencies(*stub, req, n, &failed);
    const std::string p = SizeName(size);
    if (failed > 0 || us.size() != static_cast<size_t>(n)) {
      ReportFailure(t, "unary_latency", p, failed, "unary calls failed");
      continue;
    }
    Report(t, "unary_latency", p, "p50_us", Percentile(us, 0.50));
    Report(t, "unary_latency", p, "p90_us", Percentile(us, 0.90));
    Report(t, "unary_latency", p, "p99_us", Percentile(us, 0.99));
    Report(t, "unary_latency", p, "p999_us", Percentile(us, 0.999));
  }
}

// 2. Streaming throughput: one client stream (sync), then several async
//    streams in parallel on one channel.
void StreamThroughput(const Target& t, bool quick) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  for (size_t size : {size_t{32}, size_t{1024}}) {
    const uint64_t n = quick ? 5000 : (size == 32 ? 300000 : 150000);
    Payload p;
    p.set_body(std::string(size, 'y'));
    Summary summary;
    {  // warm-up stream
      grpc::ClientContext ctx;
      auto w = stub->ClientStream(&ctx, &summary);
      for (int i = 0; i < 1000; ++i) w->Write(p);
      w->WritesDone();
      if (!w->Finish().ok()) {
        ReportFailure(t, "stream_sync", SizeName(size), 1, "warm-up stream failed");
        continue;
      }
    }
    grpc::ClientContext ctx;
    auto start = Clock::now();
    auto writer = stub->ClientStream(&ctx, &summary);
    for (uint64_t i = 0; i < n; ++i) {
      if (!writer->Write(p)) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if (!s.ok() || summary.messages() != n) {
      std::fprintf(stderr, "stream failed: %s (%llu of %llu)\n", s.error_message().c_str(),
                   static_cast<unsigned long long>(summary.messages()),
                   static_cast<unsigned long long>(n));
      // The messages the server did not count are the failed "calls".
      ReportFailure(t, "stream_sync", SizeName(size), n - std::min<uint64_t>(n, summary.messages()),
                    "client stream failed");
      continue;
    }
    Report(t, "stream_sync", SizeName(size), "msgs_per_s", n / secs);
  }

  // Async API: K client streams driven from one completion queue.
  constexpr int kStreams = 4;
  const uint64_t per_stream = quick ? 2000 : 60000;
  Payload p;
  p.set_body(std::string(32, 'z'));
  grpc::CompletionQueue cq;
  struct Stream {
    grpc::ClientContext ctx;
    Summary summary;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncWriter<Payload>> writer;
    uint64_t written = 0;
    int state = 0;  // 0 starting, 1 writing, 2 writes done, 3 finishing, 4 finished
  };
  std::vector<std::unique_ptr<Stream>> streams;
  auto start = Clock::now();
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<Stream>());
    Stream* s = streams.back().get();
    s->writer = stub->AsyncClientStream(&s->ctx, &s->summary, &cq, s);
  }
  int finished = 0;
  void* tag;
  bool ok;
  while (finished < kStreams && cq.Next(&tag, &ok)) {
    Stream* s = static_cast<Stream*>(tag);
    if (!ok && s->state < 3) s->state = 2;  // stream broke: go finish it
    switch (s->state) {
      case 0:
      case 1:
        if (s->written < per_stream) {
          s->state = 1;
          ++s->written;
          s->writer->Write(p, s);
          break;
        }
        s->state = 2;
        s->writer->WritesDone(s);
        break;
      case 2:
        s->state = 3;
        s->writer->Finish(&s->status, s);
        break;
      case 3:
        s->state = 4;
        ++finished;
        break;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t total = 0;
  bool all_ok = true;
  for (auto& s : streams) {
    total += s->summary.messages();
    all_ok = all_ok && s->status.ok();
  }
  if (all_ok && total == kStreams * per_stream) {
    Report(t, "stream_async_x4", "32B", "msgs_per_s", total / secs);
  } else {
    ReportFailure(t, "stream_async_x4", "32B",
                  kStreams * per_stream - std::min<uint64_t>(kStreams * per_stream, total),
                  "async client streams failed");
  }
}

// Field `n` of /proc/PID/stat as proc(5) numbers them (n >= 3: the fields
// after the parenthesised command name, which may hold spaces), or 0.
double ProcStatField(pid_t pid, int n) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  for (int i = 3; i <= n && rest >> field; ++i) {
    if (i == n) return std::atof(field.c_str());
  }
  return 0;
}

// Minor page faults the process has taken so far: each is a page of memory
// touched for the first time since it was mapped.
double MinorFaults(pid_t pid) { return ProcStatField(pid, 10); }

// One-way unary throughput at one size: `n` calls (after a warm-up) with a
// request of `size` bytes and an empty reply; reports the median MB/s as
// `scenario`/SizeName(size), or the failure. With `faults`, also the minor
// page faults per call of the client and of the server (for inproc, the one
// process, as the client's): where the time of a large call goes depends on
// how many of the pages it writes are fresh.
void OneWayThroughput(const Target& t, BenchService::Stub& stub, const std::string& scenario,
                      size_t size, int n, char fill, bool faults = false) {
  Payload req, resp;
  req.set_body(std::string(size, fill));
  req.set_empty_reply(true);
  uint64_t failed = CallUnary(stub, req, &resp) ? 0 : 1;  // warm-up
  const pid_t self = getpid(), server = t.flags.server_pid;
  const bool separate_server = server > 0 && server != self;
  const double client_faults0 = MinorFaults(self);
  const double server_faults0 = separate_server ? MinorFaults(server) : 0;
  std::vector<double> mbps;
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    if (!CallUnary(stub, req, &resp)) {
      ++failed;
      continue;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    mbps.push_back(size / secs / 1e6);
  }
  if (failed > 0) {
    ReportFailure(t, scenario, SizeName(size), failed, "unary calls failed");
    return;
  }
  Report(t, scenario, SizeName(size), "MB_per_s", Percentile(mbps, 0.5));
  if (faults && n > 0) {
    Report(t, scenario, SizeName(size), "client_faults_per_call",
           (MinorFaults(self) - client_faults0) / n);
    if (separate_server) {
      Report(t, scenario, SizeName(size), "server_faults_per_call",
             (MinorFaults(server) - server_faults0) / n);
    }
  }
}

// 3. Large unary messages: request of N bytes, empty reply.
void LargeMessages(const Target& t, bool quick) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  std::istringstream sizes(t.flags.large_mib);
  for (std::string part; std::getline(sizes, part, ',');) {
    const size_t mib = static_cast<size_t>(std::atoi(part.c_str()));
    if (mib == 0) continue;
    int n = quick ? (mib == 64 ? 1 : 2) : (mib == 1 ? 50 : mib == 16 ? 10 : 4);
    if (t.flags.large_calls > 0) n = t.flags.large_calls;
    OneWayThroughput(t, *stub, "large_unary", mib << 20, n, 'L', /*faults=*/true);
  }
}

// 3b. Size sweep, 1 KiB to 64 MiB: one-way unary MB/s (empty reply) at each
//     size, so no size where one transport loses to another hides between
//     the sizes of the other scenarios.
void SizeSweep(const Target& t, bool quick) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  for (size_t size = 1024; size <= (size_t{64} << 20); size *= 4) {
    // About 256 MiB per size (64 MiB in quick mode), 4 to 2000 calls.
    const size_t budget = quick ? (size_t{64} << 20) : (size_t{256} << 20);
    const int n = static_cast<int>(std::clamp<size_t>(budget / size, quick ? 2 : 4, 2000));
    OneWayThroughput(t, *stub, "sweep", size, n, 'w');
  }
}

// 4. Concurrency: C channels (each its own connection), one thread each.
void Concurrency(const Target& t, bool quick) {
  for (int channels : {1, 8, 64}) {
    const auto duration = std::chrono::milliseconds(quick ? 300 : 3000);
    std::vector<std::shared_ptr<grpc::Channel>> chans;
    int connect_errors = 0;
    for (int i = 0; i < channels; ++i) {
      chans.push_back(NewChannel(t));
      // inproc channels are not client channels: they have no connectivity state.
      // After one connection failed the rest are not waited for (10 s each):
      // the measurement has failed already.
      if (t.inproc_server == nullptr &&
          (connect_errors > 0 || !chans.back()->WaitForConnected(std::chrono::system_clock::now() +
                                                                 std::chrono::seconds(10)))) {
        ++connect_errors;
      }
    }
    if (connect_errors > 0) {
      ReportFailure(t, "concurrency", std::to_string(channels) + "ch", connect_errors,
                    "connections failed or not tried after one did");
      continue;
    }
    std::atomic<bool> go{false};
    // Latencies of the calls that succeeded: only those count as completed.
    std::vector<std::vector<double>> lat(channels);
    std::atomic<uint64_t> errors{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < channels; ++i) {
      threads.emplace_back([&, i] {
        auto stub = BenchService::NewStub(chans[i]);
        Payload req, resp;
        req.set_body(std::string(32, 'c'));
        for (int w = 0; w < 20; ++w) {
          if (!CallUnary(*stub, req, &resp)) ++errors;
        }
        while (!go.load()) std::this_thread::yield();
        const auto end = Clock::now() + duration;
        while (Clock::now() < end) {
          auto start = Clock::now();
          grpc::ClientContext ctx;
          if (!stub->Unary(&ctx, req, &resp).ok()) {
            ++errors;
            continue;
          }
          lat[i].push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
      });
    }
    auto start = Clock::now();
    go = true;
    for (auto& th : threads) th.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    const std::string p = std::to_string(channels) + "ch";
    const uint64_t failed = errors.load() + connect_errors;
    Report(t, "concurrency", p, "errors", static_cast<double>(failed));
    if (failed > 0) {
      ReportFailure(t, "concurrency", p, failed, "unary calls or connections failed");
      continue;
    }
    Report(t, "concurrency", p, "calls_per_s", all.size() / secs);
    Report(t, "concurrency", p, "p99_us", Percentile(all, 0.99));
  }
}

struct ProcStats {
  double rss_kib = 0;
  int threads = 0;
};

ProcStats ReadProcStats(pid_t pid) {
  ProcStats s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atof(line.c_str() + 6);
    if (line.rfind("Threads:", 0) == 0) s.threads = std::atoi(line.c_str() + 8);
  }
  return s;
}

// The shared memory the process maps from memfds (the transport's rings and
// their headers), from /proc/PID/smaps. RSS counts these pages in full in
// both processes that map them; PSS splits each page between them.
struct RingMemory {
  double pss_kib = 0;   // resident, shared with the peer
  double size_kib = 0;  // mapped: what the rings may come to commit
};

RingMemory ReadRingMemory(pid_t pid) {
  RingMemory m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  bool memfd = false;
  while (std::getline(in, line)) {
    const std::string first = line.substr(0, line.find(' '));
    if (first.empty() || first.back() != ':') {  // a mapping's header line
      memfd = line.find("/memfd:") != std::string::npos;
    } else if (memfd && first == "Pss:") {
      m.pss_kib += std::atof(line.c_str() + 4);
    } else if (memfd && first == "Size:") {
      m.size_kib += std::atof(line.c_str() + 5);
    }
  }
  return m;
}

// CPU seconds (user + system: fields 14 and 15) the process has used so far.
double ProcessCpuSeconds(pid_t pid) {
  return (ProcStatField(pid, 14) + ProcStatField(pid, 15)) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// 5. Scale: many idle connections, then all of them calling at once.
void Scale(const Target& t, bool quick, pid_t server_pid) {
  const int n = quick ? 100 : 1000;
  const ProcStats before = ReadProcStats(server_pid);
  const RingMemory ring_before = ReadRingMemory(server_pid);
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  int connect_errors = 0;
  for (int i = 0; i < n; ++i) {
    chans.push_back(NewChannel(t));
    if (!chans.back()->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(10))) {
      // The measurement has failed: not waiting 10 s for each of the rest.
      connect_errors = n - i;
      break;
    }
  }
  const std::string p = std::to_string(n) + "conn";
  if (connect_errors > 0) {
    Report(t, "scale", p, "errors", connect_errors);
    ReportFailure(t, "scale", p, connect_errors, "connections failed or not tried after one did");
    return;
  }
  // Let the server settle before reading its RSS, without a fixed sleep:
  // one round trip on the last channel proves it has finished accepting.
  {
    auto stub = BenchService::NewStub(chans.back());
    Payload req, resp;
    if (!CallUnary(*stub, req, &resp)) ++connect_errors;
  }
  const ProcStats idle = ReadProcStats(server_pid);
  const RingMemory ring_idle = ReadRingMemory(server_pid);
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext ctx;
    Payload resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Payload>> reader;
  };
  std::vector<std::unique_ptr<BenchService::Stub>> stubs;
  std::vector<std::unique_ptr<Call>> calls;
  Payload req;
  req.set_body(std::string(32, 's'));
  for (int i = 0; i < n; ++i) {
    stubs.push_back(BenchService::NewStub(chans[i]));
    calls.push_back(std::make_unique<Call>());
    Call* c = calls.back().get();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    c->reader = stubs.back()->AsyncUnary(&c->ctx, req, &cq);
    c->reader->Finish(&c->resp, &c->status, c);
  }
  int call_errors = 0;
  for (int i = 0; i < n; ++i) {
    void* tag;
    bool ok;
    if (!cq.Next(&tag, &ok)) break;
    if (!ok || !static_cast<Call*>(tag)->status.ok()) ++call_errors;
  }
  const ProcStats busy = ReadProcStats(server_pid);
  Report(t, "scale", p, "rss_before_kib", before.rss_kib);
  Report(t, "scale", p, "rss_idle_kib", idle.rss_kib);
  Report(t, "scale", p, "rss_after_calls_kib", busy.rss_kib);
  Report(t, "scale", p, "rss_per_idle_conn_kib", (idle.rss_kib - before.rss_kib) / n);
  // Already inside RSS (shared pages count there in full); shown apart so the
  // rings' share and their mapped size are visible next to it.
  Report(t, "scale", p, "ring_pss_per_idle_conn_kib",
         (ring_idle.pss_kib - ring_before.pss_kib) / n);
  Report(t, "scale", p, "ring_mapped_per_conn_kib",
         (ring_idle.size_kib - ring_before.size_kib) / n);
  Report(t, "scale", p, "threads_before", before.threads);
  Report(t, "scale", p, "threads_idle", idle.threads);
  Report(t, "scale", p, "threads_after_calls", busy.threads);
  Report(t, "scale", p, "errors", connect_errors + call_errors);
  if (connect_errors + call_errors > 0) {
    ReportFailure(t, "scale", p, connect_errors + call_errors, "connections or unary calls failed");
  }
}

// Proportional set size of the whole process (/proc/PID/smaps_rollup): its
// private pages plus its share of pages mapped by others too (the rings,
// split with the peer), so server + client adds up shared memory once.
double ReadPssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::atof(line.c_str() + 4);
  }
  return 0;
}

int CountDescriptors(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// 5b. What a connection costs once it has carried a large call and gone
//     idle: N connections each make one 1 MiB unary call (1 MiB each way),
//     then all stay open and idle for a second. Memory is PSS, server plus
//     client (rings counted once), and the server's descriptors, per
//     connection.
void IdleAfterTraffic(const Target& t, bool quick, pid_t server_pid) {
  const int n = quick ? 20 : 100;
  const pid_t self = getpid();
  const double server0 = ReadPssKib(server_pid), client0 = ReadPssKib(self);
  const int fds0 = CountDescriptors(server_pid);
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  Payload req, resp;
  req.set_body(std::string(size_t{1} << 20, 'i'));
  uint64_t failed = 0;
  for (int i = 0; i < n; ++i) {
    chans.push_back(NewChannel(t));
    auto stub = BenchService::NewStub(chans.back());
    if (!CallUnary(*stub, req, &resp)) ++failed;
  }
  const std::string p = std::to_string(n) + "conn";
  if (failed > 0) {
    ReportFailure(t, "idle_after_traffic", p, failed, "unary calls failed");
    return;
  }
  // The idle period the figure is defined by (not a synchronisation), plus
  // 100 ms for timers that fire at one second to have run.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const double server = ReadPssKib(server_pid) - server0, client = ReadPssKib(self) - client0;
  Report(t, "idle_after_traffic", p, "pss_per_conn_kib", (server + client) / n);
  Report(t, "idle_after_traffic", p, "server_pss_per_conn_kib", server / n);
  Report(t, "idle_after_traffic", p, "client_pss_per_conn_kib", client / n);
  Report(t, "idle_after_traffic", p, "server_fds_per_conn",
         static_cast<double>(CountDescriptors(server_pid) - fds0) / n);
}

// 6. CPU cost per call at a fixed, moderate rate.
void CpuCost(const Target& t, bool quick, pid_t server_pid) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  Payload req, resp;
  req.set_body(std::string(32, 'u'));
  uint64_t failed = 0;
  for (int i = 0; i < 100; ++i) {
    if (!CallUnary(*stub, req, &resp)) ++failed;
  }
  const int rate = 2000;  // calls per second
  const int calls = quick ? 500 : 6000;
  const pid_t self = getpid();
  const double client0 = ProcessCpuSeconds(self);
  const double server0 = server_pid > 0 && server_pid != self ? ProcessCpuSeconds(server_pid) : 0;
  auto next = Clock::now();
  for (int i = 0; i < calls; ++i) {
    std::this_thread::sleep_until(next);
    next += std::chrono::microseconds(1000000 / rate);
    if (!CallUnary(*stub, req, &resp)) ++failed;
  }
  const std::string p = std::to_string(rate) + "rps";
  if (failed > 0) {
    ReportFailure(t, "cpu_cost", p, failed, "unary calls failed");
    return;
  }
  const double client = ProcessCpuSeconds(self) - client0;
  const double server =
      server_pid > 0 && server_pid != self ? ProcessCpuSeconds(server_pid) - server0 : 0;
  Report(t, "cpu_cost", p, "cpu_us_per_call", (client + server) * 1e6 / calls);
  Report(t, "cpu_cost", p, "client_cpu_us_per_call", client * 1e6 / calls);
  Report(t, "cpu_cost", p, "server_cpu_us_per_call", server * 1e6 / calls);
}

#ifdef GRPC_SHM_HAVE_TRANSPORT
// "shm:///abs" or "shm:@name" -> the IPC core's "/abs" or "@name".
std::string IpcAddressOf(const std::string& target) {
  if (target.rfind("shm://", 0) == 0) return target.substr(6);
  if (target.rfind("shm:", 0) == 0) return target.substr(4);
  return target;
}

struct FloodState {
  std::mutex mu;
  std::condition_variable cv;
  int connected = 0;  // or gave up trying
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> frames{0};
  std::atomic<int> lost{0};
};

// One flooding connection: window updates for a stream it never opened, as
// fast as the ring takes them. The server must read each one but ignores it
// and never answers, so all this peer costs it is the reading: what the read
// budget per wake-up is for. Not pings: those are answered, and a peer that
// keeps pinging is disconnected.
void FloodOne(const std::string& address, FloodState* st) {
  using IpcClock = ipc::Connection::Clock;
  std::unique_ptr<ipc::Connection> c;
  ipc::Status s = ipc::Connect(address, ipc::DefaultConnectionOptions(), &c);
  ipc::FrameView in;
  if (s.ok()) s = c->ReadFrame(&in, IpcClock::now() + std::chrono::seconds(10));
  if (s.ok() && in.header.type != ipc::kFrameSettings) {
    s = ipc::Status(ipc::StatusCode::kProtocol, "first frame is not the settings frame");
  }
  if (s.ok()) c->Consume();
  {
    std::lock_guard<std::mutex> lock(st->mu);
    ++st->connected;
  }
  st->cv.notify_all();
  if (!s.ok()) {
    std::fprintf(stderr, "flood: %s\n", s.ToString().c_str());
    ++st->lost;
    return;
  }
  ipc::FrameHeader h{};
  h.type = ipc::kFrameWindowUpdate;
  h.stream_id = 1;  // never opened
  h.aux = 1;
  uint64_t n = 0;
  while (!st->stop.load(std::memory_order_relaxed)) {
    // Drain what the server sends (nothing, normally): this peer must never
    // be the one that blocks the other.
    while ((s = c->Peek(&in)).ok()) c->Consume();
    if (s.code() != ipc::StatusCode::kWouldBlock) break;
    for (int i = 0; i < 256; ++i) {
      s = c->TryWriteFrame(h, nullptr, 0);
      if (s.code() == ipc::StatusCode::kWouldBlock) {
        // Ring full: sleep until the server has read a share of it.
        s = c->WriteFrame(h, nullptr, 0, IpcClock::now() + std::chrono::milliseconds(20));
      }
      if (!s.ok()) break;
      ++n;
    }
    if (!s.ok() && s.code() != ipc::StatusCode::kTimeout) break;
  }
  st->frames += n;
  if (!st->stop.load()) {
    std::fprintf(stderr, "flood: connection lost: %s\n", s.ToString().c_str());
    ++st->lost;
  }
}

int RunFlood(const Flags& f) {
  FloodState st;
  const std::string address = IpcAddressOf(f.address);
  std::vector<std::thread> threads;
  for (int i = 0; i < f.connections; ++i) threads.emplace_back(FloodOne, address, &st);
  {
    std::unique_lock<std::mutex> lock(st.mu);
    st.cv.wait(lock, [&] { return st.connected == f.connections; });
  }
  const auto start = Clock::now();
  std::printf("FLOODING\n");
  std::fflush(stdout);
  char buf[64];
  while (::read(0, buf, sizeof(buf)) > 0) {
  }
  st.stop = true;
  for (auto& th : threads) th.join();
  std::printf("FLOODED %llu %.6f %d\n", static_cast<unsigned long long>(st.frames.load()),
              std::chrono::duration<double>(Clock::now() - start).count(), st.lost.load());
  std::fflush(stdout);
  return 0;
}

// This binary again, in `mode`, with pipes to its standard input and from
// its standard output. The caller closes `in` to end it.
struct Child {
  pid_t pid = -1;
  int in = -1;
  FILE* out = nullptr;
};

bool SpawnSelf(const std::vector<std::string>& args, Child* child) {
  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  int to[2], from[2];
  if (len <= 0 || ::pipe2(to, O_CLOEXEC) != 0) return false;
  if (::pipe2(from, O_CLOEXEC) != 0) {
    ::close(to[0]);
    ::close(to[1]);
    return false;
  }
  exe[len] = '\0';
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from[1], 1);
  std::vector<char*> argv{exe};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // posix_spawn, not fork: this process runs gRPC's threads.
  const int rc = posix_spawn(&child->pid, exe, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(to[0]);
  ::close(from[1]);
  if (rc != 0) {
    ::close(to[1]);
    ::close(from[0]);
    return false;
  }
  child->in = to[1];
  child->out = ::fdopen(from[0], "r");
  return true;
}

// 7. Fairness: an honest client's unary 32 B latency alone, then while 1 and
//    4 raw connections (another process) keep the server's polling threads
//    busy reading cheap frames. The read budget per wake-up is what keeps the
//    flooded figures near the baseline. Rounds alternate the three
//    conditions, so that what the VM's neighbours do falls on all of them
//    alike; each percentile pools its condition's calls over the rounds.
void Fairness(const Target& t, bool quick, pid_t server_pid) {
  auto channel = NewChannel(t);
  auto stub = BenchService::NewStub(channel);
  Payload req;
  req.set_body(std::string(32, 'f'));
  const int rounds = quick ? 1 : 5, n = quick ? 1000 : 2000;
  const int kFlooders[] = {0, 1, 4};
  struct Condition {
    std::vector<double> us;
    double frames = 0, flood_secs = 0, server_cpu = 0, wall = 0;
    int lost = 0;
  } cond[3];
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < 3; ++i) {
      Child child;
      bool ok = true;
      char line[256] = {};
      if (kFlooders[i] > 0) {
        ok = SpawnSelf({"flood", "--address=" + t.address,
                        "--connections=" + std::to_string(kFlooders[i])},
                       &child) &&
             std::fgets(line, sizeof(line), child.out) != nullptr &&
             std::strncmp(line, "FLOODING", 8) == 0;
      }
      const double cpu0 = ProcessCpuSeconds(server_pid);
      const auto start = Clock::now();
      uint64_t failed = 0;
      const std::vector<double> us =
          ok ? UnaryLatencies(*stub, req, n, &failed) : std::vector<double>();
      cond[i].wall += std::chrono::duration<double>(Clock::now() - start).count();
      cond[i].server_cpu += ProcessCpuSeconds(server_pid) - cpu0;
      if (child.pid > 0) {
        ::close(child.in);
        unsigned long long frames = 0;
        double secs = 0;
        int lost = -1;
        if (child.out != nullptr && std::fgets(line, sizeof(line), child.out) != nullptr) {
          std::sscanf(line, "FLOODED %llu %lf %d", &frames, &secs, &lost);
        }
        if (child.out != nullptr) std::fclose(child.out);
        int wstatus = 0;
        ::waitpid(child.pid, &wstatus, 0);
        ok = ok && secs > 0 && lost >= 0;
        cond[i].frames += frames;
        cond[i].flood_secs += secs;
        cond[i].lost += lost;
      }
      if (!ok || failed > 0 || us.size() != static_cast<size_t>(n)) {
        ReportFailure(t, "fairness", std::to_string(kFlooders[i]) + "flooders", failed,
                      ok ? "unary calls failed" : "flooding process did not start or report");
        return;
      }
      cond[i].us.insert(cond[i].us.end(), us.begin(), us.end());
    }
  }
  const double p50 = Percentile(cond[0].us, 0.50), p99 = Percentile(cond[0].us, 0.99);
  for (int i = 0; i < 3; ++i) {
    const std::string p = kFlooders[i] == 0   ? std::string("alone")
                          : kFlooders[i] == 1 ? std::string("1flooder")
                                              : std::to_string(kFlooders[i]) + "flooders";
    const double f50 = Percentile(cond[i].us, 0.50), f99 = Percentile(cond[i].us, 0.99);
    Report(t, "fairness", p, "p50_us", f50);
    Report(t, "fairness", p, "p99_us", f99);
    // How busy the flooders kept the server: 100 = one core.
    Report(t, "fairness", p, "server_cpu_pct", 100 * cond[i].server_cpu / cond[i].wall);
    if (kFlooders[i] == 0) continue;
    Report(t, "fairness", p, "p50_x", f50 / p50);
    Report(t, "fairness", p, "p99_x", f99 / p99);
    Report(t, "fairness", p, "flood_frames_per_s", cond[i].frames / cond[i].flood_secs);
    Report(t, "fairness", p, "flood_conns_lost", cond[i].lost);
  }
}
#endif

void RunScenarios(const Target& t, const Flags& f, pid_t server_pid) {
  if (Wants(f, "unary_latency")) UnaryLatency(t, f.quick);
  if (Wants(f, "stream")) StreamThroughput(t, f.quick);
  if (Wants(f, "large")) LargeMessages(t, f.quick);
  if (Wants(f, "sweep")) SizeSweep(t, f.quick);
  if (Wants(f, "concurrency")) Concurrency(t, f.quick);
  if (Wants(f, "scale") && server_pid != getpid()) Scale(t, f.quick, server_pid);
  if (Wants(f, "idle") && server_pid != getpid()) IdleAfterTraffic(t, f.quick, server_pid);
  if (Wants(f, "cpu")) CpuCost(t, f.quick, server_pid);
#ifdef GRPC_SHM_HAVE_TRANSPORT
  if (Wants(f, "fairness") && t.transport == "shm") Fairness(t, f.quick, server_pid);
#endif
}

int RunClient(const Flags& f) {
  RaiseFileLimit();
  Target t{f.transport, f.address, nullptr, f};
  if (f.transport == "uds" && t.address.rfind("unix:", 0) != 0) t.address = "unix:" + t.address;
  RunScenarios(t, f, f.server_pid);
  return g_failed_measurements > 0 ? 1 : 0;
}

int RunInproc(const Flags& f) {
  BenchServiceImpl service;
  grpc::ServerBuilder builder;
  ConfigureServer(builder, &service);
  auto server = builder.BuildAndStart();
  Target t{"inproc", "", server.get(), f};
  // Server and client share a process: the CPU figure is the total.
  RunScenarios(t, f, getpid());
  server->Shutdown();
  return g_failed_measurements > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  if (f.mode == "server") return RunServer(f);
  if (f.mode == "client") return RunClient(f);
  if (f.mode == "inproc") return RunInproc(f);
#ifdef GRPC_SHM_HAVE_TRANSPORT
  if (f.mode == "flood") return RunFlood(f);
#endif
  std::fprintf(stderr,
               "usage: %s server|client|inproc|flood [--transport=tcp|uds|shm] [--address=A] "
               "[--server_pid=P] [--quick] [--spin_us=N] [--ring_kib=N] [--scenarios=a,b] "
               "[--connections=N] [--also_listen=A,B] [--label=NAME] [--large_mib=1,16,64] "
               "[--large_calls=N]\n",
               argv[0]);
  return 2;
}
