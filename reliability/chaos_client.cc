// Client mode of the chaos harness: warms up, measures its baseline, then on
// "go" opens the calls of one scenario and keeps them in flight until the
// driver kills it or the server. As the survivor it prints how each call
// ended ("END <call> <status code> <monotonic ns>"), then answers
//   settle <ms>   "SETTLED OK|FAIL <usage>": back to the baseline?
//   reconnect     one call on the same channel once the server restarted
//                 ("RECONNECT <status code>")
//   quit
// Scenarios (the calls in flight when the kill comes):
//   handshake  channel after channel, one call each: most kills land in a
//              connect or handshake
//   large      a bidi stream echoing multi-megabyte messages and a client
//              stream uploading them: kills land mid-chunk
//   stream     a server stream read as fast as it comes, a bidi ping-pong
//   paused     a server stream read once and then not (the server's writes
//              wait for window), a bidi stream written and never read
//   queued     more calls than the server's max_concurrent_streams: the
//              rest wait in the client's queue
// Every scenario but handshake also holds a unary call the server keeps open
// ("canary").
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "reliability/peer_common.h"
#include "reliability/process_usage.h"
#include "src/core/lib/event_engine/default_event_engine.h"

namespace grpc_shm {
namespace reliability {
namespace {

using grpc::ClientContext;
using grpc::Status;
using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;
using grpc_shm::test::EchoTest;

// A channel of its own (local subchannel pool), reconnecting quickly so a
// restarted server is found without the default backoff of seconds.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("grpc_shm.reliability.channel", index);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(128 << 20);
  args.SetMaxSendMessageSize(128 << 20);
  return grpc::CreateCustomChannel(address, grpc_shm::ChannelCredentials(), args);
}

Status OneCall(EchoTest::Stub* stub, bool wait_for_ready) {
  ClientContext ctx;
  ctx.set_wait_for_ready(wait_for_ready);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  EchoRequest req;
  req.set_payload("ping");
  req.set_message(ChecksumTag(req.payload()));
  EchoResponse resp;
  return stub->Unary(&ctx, req, &resp);
}

// What the scenario's calls share: the stub, a count of calls that have
// started (for "INFLIGHT"), and a latch the paused reader waits on.
class Scenario {
 public:
  Scenario(std::shared_ptr<grpc::Channel> channel, std::string address, uint64_t seed,
           int64_t large_bytes)
      : channel_(std::move(channel)),
        stub_(EchoTest::NewStub(channel_)),
        address_(std::move(address)),
        seed_(seed),
        large_bytes_(large_bytes) {}

  // Starts call `name` on its own thread; `body` returns its status and
  // calls Started() once the call is in flight.
  void Add(const std::string& name, std::function<Status()> body) {
    ++calls_;
    threads_.emplace_back([this, name, body] {
      Status status = body();
      Say("END %s %d %lld %s", name.c_str(), static_cast<int>(status.error_code()),
          static_cast<long long>(MonotonicNs()), status.error_message().c_str());
      std::lock_guard<std::mutex> lock(mu_);
      ++ended_;
      cv_.notify_all();
    });
  }

  void Started() {
    std::lock_guard<std::mutex> lock(mu_);
    ++started_;
    cv_.notify_all();
  }
  // Until every call started or one ended (bounded, to report a hang).
  void WaitUntilInFlight() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return started_ == calls_ || ended_ > 0; });
  }
  void WaitUntilAnyEnded() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ended_ > 0; });
  }
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int calls() const { return calls_; }

  EchoTest::Stub* stub() { return stub_.get(); }
  const std::string& address() const { return address_; }
  int64_t large_bytes() const { return large_bytes_; }
  uint64_t seed() const { return seed_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<EchoTest::Stub> stub_;
  std::string address_;
  uint64_t seed_;
  int64_t large_bytes_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  int started_ = 0;
  int ended_ = 0;
};

Status Canary(Scenario* s) {
  ClientContext ctx;
  EchoRequest req;
  req.set_message("canary");
  req.set_wait_for_cancel(true);
  EchoResponse resp;
  s->Started();  // the unary API blocks until the end; the driver waits for the handler
  return s->stub()->Unary(&ctx, req, &resp);
}

Status LargeBidi(Scenario* s, uint64_t seed) {
  ClientContext ctx;
  auto stream = s->stub()->Bidi(&ctx);
  uint64_t rng = seed;
  for (int i = 0;; ++i) {
    EchoRequest req;
    size_t size = 256 * 1024 + NextRandom(&rng) % static_cast<uint64_t>(s->large_bytes());
    req.set_payload(std::string(size, 'b'));
    req.set_wait_for_cancel(true);
    if (!stream->Write(req)) break;
    if (i == 0) s->Started();
    EchoResponse resp;
    if (!stream->Read(&resp)) break;
    if (resp.payload().size() != size) return Status(grpc::StatusCode::DATA_LOSS, "short echo");
  }
  return stream->Finish();
}

Status LargeUpload(Scenario* s, uint64_t seed) {
  ClientContext ctx;
  EchoResponse resp;
  auto writer = s->stub()->ClientStream(&ctx, &resp);
  uint64_t rng = seed;
  for (int i = 0;; ++i) {
    EchoRequest req;
    req.set_payload(
        std::string(128 * 1024 + NextRandom(&rng) % static_cast<uint64_t>(s->large_bytes()), 'u'));
    req.set_wait_for_cancel(true);
    if (!writer->Write(req)) break;
    if (i == 0) s->Started();
  }
  return writer->Finish();
}

Status StreamRead(Scenario* s, uint64_t seed) {
  ClientContext ctx;
  EchoRequest req;
  uint64_t rng = seed;
  req.set_count(0);  // endless
  req.set_response_bytes(16 + static_cast<int64_t>(NextRandom(&rng) % 4096));
  auto reader = s->stub()->ServerStream(&ctx, req);
  EchoResponse resp;
  for (int i = 0; reader->Read(&resp); ++i) {
    if (i == 0) s->Started();
  }
  return reader->Finish();
}

Status SmallBidi(Scenario* s, uint64_t seed) {
  ClientContext ctx;
  auto stream = s->stub()->Bidi(&ctx);
  uint64_t rng = seed;
  for (int i = 0;; ++i) {
    EchoRequest req;
    req.set_payload(std::string(1 + NextRandom(&rng) % 1024, 's'));
    req.set_wait_for_cancel(true);
    EchoResponse resp;
    if (!stream->Write(req) || !stream->Read(&resp)) break;
    if (i == 0) s->Started();
  }
  return stream->Finish();
}

// Reads one response, then stops reading until another call has ended (the
// server is gone), so the server's writes wait for window meanwhile.
Status PausedRead(Scenario* s) {
  ClientContext ctx;
  EchoRequest req;
  req.set_count(0);
  req.set_response_bytes(256 * 1024);
  auto reader = s->stub()->ServerStream(&ctx, req);
  EchoResponse resp;
  if (reader->Read(&resp)) {
    s->Started();
    s->WaitUntilAnyEnded();
    while (reader->Read(&resp)) {
    }
  }
  return reader->Finish();
}

// Writes and never reads: the server's echoes fill this call's window, its
// handler stops reading, and then these writes wait too.
Status UnreadBidi(Scenario* s) {
  ClientContext ctx;
  auto stream = s->stub()->Bidi(&ctx);
  for (int i = 0;; ++i) {
    EchoRequest req;
    req.set_payload(std::string(64 * 1024, 'w'));
    req.set_wait_for_cancel(true);
    if (!stream->Write(req)) break;
    if (i == 0) s->Started();
  }
  return stream->Finish();
}

// One new channel per call, until a call fails.
Status Handshakes(Scenario* s) {
  s->Started();
  for (int i = 1;; ++i) {
    auto channel = MakeChannel(s->address(), i);
    auto stub = EchoTest::NewStub(channel);
    Status status = OneCall(stub.get(), /*wait_for_ready=*/false);
    if (!status.ok()) return status;
  }
}

// Starts the calls of `name`; returns how many server handlers they start
// (-1: unknown scenario).
int StartScenario(const std::string& name, int max_streams, Scenario* s) {
  uint64_t seed = s->seed();
  if (name == "handshake") {
    s->Add("handshakes", [s] { return Handshakes(s); });
    return 0;
  }
  s->Add("canary", [s] { return Canary(s); });
  if (name == "large") {
    s->Add("large-bidi", [s, seed] { return LargeBidi(s, seed + 1); });
    s->Add("large-upload", [s, seed] { return LargeUpload(s, seed + 2); });
    return 3;
  }
  if (name == "stream") {
    s->Add("stream-read", [s, seed] { return StreamRead(s, seed + 3); });
    s->Add("small-bidi", [s, seed] { return SmallBidi(s, seed + 4); });
    return 3;
  }
  if (name == "paused") {
    s->Add("paused-read", [s] { return PausedRead(s); });
    s->Add("unread-bidi", [s] { return UnreadBidi(s); });
    return 3;
  }
  if (name == "queued") {
    const int extra = max_streams + 6;
    for (int i = 0; i < extra; ++i) {
      s->Add("queued-" + std::to_string(i), [s] { return Canary(s); });
    }
    return std::min(extra + 1, max_streams);
  }
  return -1;
}

}  // namespace

// Flags: --address=shm:... --scenario=NAME --seed=N [--large-bytes=N]
//        [--max-streams=N] (the server's limit, for "queued")
int RunChaosClient(int argc, char** argv) {
  const std::string address = Flag(argc, argv, "address", "");
  // Keeps gRPC initialised between the warm-up channel and the next: with
  // no channel left gRPC shuts down and stops its threads, and the baseline
  // would miss what gRPC itself holds while any channel exists.
  grpc_init();
  // gRPC's default EventEngine (its threads and poll set) lives only while
  // something holds it: a channel that retries a connect does, and a trial's
  // channel then holds it after the server died. Held here for the whole
  // process, it is part of the baseline instead of counted against a trial.
  auto event_engine = grpc_event_engine::experimental::GetDefaultEventEngine();
  {
    auto stub = EchoTest::NewStub(MakeChannel(address, 0));
    Status status = OneCall(stub.get(), /*wait_for_ready=*/true);
    if (!status.ok()) {
      Say("FAILED warm-up call: %d %s", status.error_code(), status.error_message().c_str());
      return 1;
    }
  }
  ProcessUsage baseline = IdleBaseline(std::chrono::seconds(20));
  Say("BASELINE %s", Describe(baseline).c_str());
  std::fprintf(stderr, "baseline %s\n", DescribeHoldings().c_str());
  std::string line;
  if (!std::getline(std::cin, line) || line != "go") std::_Exit(0);

  auto channel = MakeChannel(address, -1);
  auto scenario = std::make_unique<Scenario>(channel, address,
                                             static_cast<uint64_t>(IntFlag(argc, argv, "seed", 1)),
                                             IntFlag(argc, argv, "large-bytes", 8 << 20));
  int handlers =
      StartScenario(Flag(argc, argv, "scenario", ""),
                    static_cast<int>(IntFlag(argc, argv, "max-streams", 4)), scenario.get());
  if (handlers < 0) {
    Say("FAILED unknown scenario");
    return 2;
  }
  scenario->WaitUntilInFlight();
  Say("INFLIGHT %d", handlers);
  scenario->Join();
  Say("ALLDONE %d", scenario->calls());
  scenario.reset();

  auto stub = EchoTest::NewStub(channel);
  while (std::getline(std::cin, line)) {
    if (line.rfind("settle", 0) == 0) {
      ProcessUsage now;
      bool ok = WaitForBaseline(baseline, kConnectPoolGrowth,
                                std::chrono::milliseconds(std::stoll(line.substr(6))), &now);
      if (!ok) std::fprintf(stderr, "not back to baseline; %s\n", DescribeHoldings().c_str());
      Say("SETTLED %s %s", ok ? "OK" : "FAIL", Describe(now).c_str());
    } else if (line == "reconnect") {
      Status status = OneCall(stub.get(), /*wait_for_ready=*/true);
      Say("RECONNECT %d %s", static_cast<int>(status.error_code()), status.error_message().c_str());
    } else if (line == "quit") {
      break;
    }
  }
  std::_Exit(0);
}

// Flags: --address=shm:...  One call on a fresh channel (waiting for the
// server to be ready); "PROBE <status code>".
int RunProbe(int argc, char** argv) {
  auto stub = EchoTest::NewStub(MakeChannel(Flag(argc, argv, "address", ""), 0));
  Status status = OneCall(stub.get(), /*wait_for_ready=*/true);
  Say("PROBE %d %s", static_cast<int>(status.error_code()), status.error_message().c_str());
  std::_Exit(status.ok() ? 0 : 1);
}

}  // namespace reliability
}  // namespace grpc_shm
