// End-to-end behaviour of the shm transport: a real gRPC client in this
// process against echo_test_server in another, through shared memory.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "plugin/ipc/connection.h"
#include "plugin/ipc/metadata_codec.h"
#include "plugin/platform/platform.h"
#include "plugin/transport/keepalive.h"
#include "plugin/transport/tests/test_address.h"
#include "server_process.h"

namespace grpc_shm {
namespace {

using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

std::string UniqueSuffix() {
  static std::atomic<int> counter{0};
  return std::to_string(getpid()) + "_" + std::to_string(counter++);
}

// "shm:@name", or a socket file where there are no abstract names.
std::string UniqueAbstractAddress() {
  return grpc_shm::testing::TestShmTarget("grpc_shm_e2e_" + UniqueSuffix());
}

std::chrono::system_clock::time_point In(std::chrono::milliseconds ms) {
  return std::chrono::system_clock::now() + ms;
}

// Which transport the client uses. The server always listens on all three
// at once; TCP and UDS are the oracle: every behaviour test must pass on
// each of them the same way.
enum class Transport { kShm, kUds, kTcp };

std::string TransportName(const ::testing::TestParamInfo<Transport>& info) {
  switch (info.param) {
    case Transport::kShm:
      return "Shm";
    case Transport::kUds:
      return "Uds";
    case Transport::kTcp:
      return "Tcp";
  }
  return "Unknown";
}

class TransportE2ETest : public ::testing::TestWithParam<Transport> {
 protected:
  TransportE2ETest() {
    address_ = UniqueAbstractAddress();
    uds_path_ = "/tmp/grpc_shm_e2e_" + UniqueSuffix() + ".sock";
  }
  ~TransportE2ETest() override {
    server_.reset();
    unlink(uds_path_.c_str());
  }

  // `tcp_port` 0 picks a free port; a restarted server passes the old one.
  void StartServer(uint32_t ring_bytes = 0, int tcp_port = 0,
                   std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {GRPC_SHM_ECHO_SERVER, "--shm=" + address_,
                                     "--uds=" + uds_path_, "--tcp=" + std::to_string(tcp_port)};
    if (ring_bytes != 0) args.push_back("--ring=" + std::to_string(ring_bytes));
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<ServerProcess>(args);
    ASSERT_TRUE(server_->ok()) << "echo_test_server did not start";
    tcp_port_ = server_->tcp_port();
  }
  void RestartServer() {
    server_->Kill();
    unlink(uds_path_.c_str());
    StartServer(0, tcp_port_);
  }

  Transport transport() const { return GetParam(); }
  std::string Target() const {
    switch (transport()) {
      case Transport::kShm:
        return address_;
      case Transport::kUds:
        return "unix:" + uds_path_;
      case Transport::kTcp:
        return "127.0.0.1:" + std::to_string(tcp_port_);
    }
    return "";
  }
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const ShmOptions& options = {}) {
    return transport() == Transport::kShm ? ChannelCredentials(options)
                                          : grpc::InsecureChannelCredentials();
  }

  std::unique_ptr<EchoTest::Stub> Stub(const ShmOptions& options = {}) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(128 << 20);
    args.SetMaxSendMessageSize(128 << 20);
    channel_ = grpc::CreateCustomChannel(Target(), Credentials(options), args);
    return EchoTest::NewStub(channel_);
  }

  std::string address_;  // shm
  std::string uds_path_;
  int tcp_port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

INSTANTIATE_TEST_SUITE_P(AllTransports, TransportE2ETest,
                         ::testing::Values(Transport::kShm, Transport::kUds, Transport::kTcp),
                         TransportName);

// Behaviour specific to shm (addresses, options, its own peer string).
class ShmOnlyTest : public TransportE2ETest {};
INSTANTIATE_TEST_SUITE_P(Shm, ShmOnlyTest, ::testing::Values(Transport::kShm), TransportName);

TEST_P(TransportE2ETest, UnaryRoundTrip) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_message("hello");
  req.set_payload(std::string("\0\1\2binary", 9));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.message(), "hello");
  EXPECT_EQ(resp.payload(), req.payload());
  EXPECT_EQ(resp.deadline_remaining_ms(), -1);
}

TEST_P(TransportE2ETest, EmptyMessagesRoundTrip) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  EXPECT_TRUE(resp.message().empty());
  EXPECT_TRUE(resp.payload().empty());
}

TEST_P(ShmOnlyTest, ServerSeesShmPeerWithPid) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  EXPECT_EQ(resp.peer().rfind("shm:pid=" + std::to_string(getpid()) + ",", 0), 0u) << resp.peer();
}

TEST_P(TransportE2ETest, MetadataTravelsBothWaysIncludingBinaryAndLarge) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  const std::string binary("\0\xff\x10zz", 5);
  // Under gRPC's default 8 KiB metadata limit, which over HTTP/2 counts
  // key + value + 32 bytes per entry.
  const std::string large(6 * 1024, 'v');
  ctx.AddMetadata("x-plain", "value");
  ctx.AddMetadata("x-data-bin", binary);
  ctx.AddMetadata("x-large", large);
  EchoResponse resp;
  {
    grpc::Status st = stub->Unary(&ctx, EchoRequest(), &resp);
    ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  }
  auto find = [](const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                 const std::string& key) {
    auto it = md.find(key);
    return it == md.end() ? std::string("<missing>")
                          : std::string(it->second.data(), it->second.size());
  };
  EXPECT_EQ(find(ctx.GetServerInitialMetadata(), "x-plain"), "value");
  EXPECT_EQ(find(ctx.GetServerInitialMetadata(), "x-data-bin"), binary);
  EXPECT_EQ(find(ctx.GetServerInitialMetadata(), "x-large"), large);
  EXPECT_EQ(find(ctx.GetServerTrailingMetadata(), "x-plain"), "value");
  EXPECT_EQ(find(ctx.GetServerTrailingMetadata(), "x-data-bin"), binary);
}

TEST_P(TransportE2ETest, OversizedMetadataFailsWithResourceExhausted) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-huge", std::string(16 * 1024, 'h'));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  // Over shm only that call fails. (chttp2 treats the oversized header block
  // as a connection error, so TCP and UDS may fail the next call too: a
  // divergence we keep on purpose.)
  if (transport() == Transport::kShm) {
    grpc::ClientContext ctx2;
    EXPECT_TRUE(stub->Unary(&ctx2, EchoRequest(), &resp).ok());
  }
}

TEST_P(TransportE2ETest, StatusCodeMessageAndDetailsPropagate) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_status_code(grpc::StatusCode::NOT_FOUND);
  req.set_status_message("no such thing \xe2\x9c\x93");
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), req.status_message());
  EXPECT_EQ(status.error_details(), "details-bytes");
}

TEST_P(TransportE2ETest, ClientStreaming) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  auto writer = stub->ClientStream(&ctx, &resp);
  for (int i = 0; i < 50; ++i) {
    EchoRequest req;
    req.set_message(std::to_string(i % 10));
    ASSERT_TRUE(writer->Write(req));
  }
  ASSERT_TRUE(writer->WritesDone());
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.received(), 50);
  EXPECT_EQ(resp.message().size(), 50u);
}

TEST_P(TransportE2ETest, ServerStreaming) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_message("m");
  req.set_count(200);
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  int n = 0;
  while (reader->Read(&resp)) {
    EXPECT_EQ(resp.message(), "m" + std::to_string(n));
    ++n;
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(n, 200);
}

TEST_P(TransportE2ETest, ServerStreamingEndingWithError) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_count(3);
  req.set_status_code(grpc::StatusCode::RESOURCE_EXHAUSTED);
  req.set_status_message("enough");
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  while (reader->Read(&resp)) {
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "enough");
}

TEST_P(TransportE2ETest, BidiStreamingPingPong) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  auto stream = stub->Bidi(&ctx);
  for (int i = 0; i < 100; ++i) {
    EchoRequest req;
    req.set_message("ping" + std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
    EchoResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.message(), req.message());
  }
  ASSERT_TRUE(stream->WritesDone());
  EchoResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A thread whose call awaits the peer polls the ring for up to the spin
// budget, with the peer told not to ring; then it must announce sleep again
// and rely on the doorbell. Budgets that (nearly) always miss, sometimes hit
// and always hit, on both sides at once: every call completes, and a spin
// that forgot to re-announce would leave a call waiting for ever.
TEST_P(ShmOnlyTest, EveryCallCompletesWhateverTheSpinBudget) {
  for (int64_t spin_ns : {int64_t{0}, int64_t{1000}, int64_t{50000}, int64_t{20000000}}) {
    SCOPED_TRACE("spin budget " + std::to_string(spin_ns) + " ns");
    StartServer(0, 0, {"--spin-ns=" + std::to_string(spin_ns)});
    ShmOptions options;
    options.spin_budget = std::chrono::nanoseconds(spin_ns);
    auto stub = Stub(options);
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(std::chrono::seconds(20)));
      EchoRequest req;
      req.set_message("unary" + std::to_string(i));
      EchoResponse resp;
      grpc::Status status = stub->Unary(&ctx, req, &resp);
      ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
      ASSERT_EQ(resp.message(), req.message());
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(20)));
    auto stream = stub->Bidi(&ctx);
    for (int i = 0; i < 200; ++i) {
      EchoRequest req;
      req.set_message(std::string(static_cast<size_t>(i) * 331, 'b'));
      ASSERT_TRUE(stream->Write(req)) << i;
      EchoResponse resp;
      ASSERT_TRUE(stream->Read(&resp)) << i;
      ASSERT_EQ(resp.message().size(), req.message().size());
    }
    ASSERT_TRUE(stream->WritesDone());
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    server_.reset();
  }
}

TEST_P(TransportE2ETest, DeadlineReachesServer) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(20)));
  EchoResponse resp;
  ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  EXPECT_GT(resp.deadline_remaining_ms(), 10000);
  // grpc-timeout is rounded up to its unit, as over HTTP/2.
  EXPECT_LE(resp.deadline_remaining_ms(), 21000);
}

TEST_P(TransportE2ETest, ExpiredDeadlineGivesDeadlineExceeded) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::milliseconds(200)));
  EchoRequest req;
  req.set_wait_for_cancel(true);
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_P(TransportE2ETest, ClientCancellationEndsServerStream) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_message("to-cancel");
  req.set_count(1);
  req.set_wait_for_cancel(true);
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  ASSERT_TRUE(reader->Read(&resp));  // the handler is now running
  ctx.TryCancel();
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(server_->ReadLineStartingWith("CANCELLED"), "CANCELLED to-cancel");
  // The connection still serves other calls.
  grpc::ClientContext ctx2;
  EXPECT_TRUE(stub->Unary(&ctx2, EchoRequest(), &resp).ok());
}

// Resident KiB of this process's memfd mappings (the rings of its shm
// connections), from /proc/self/smaps.
size_t RingResidentKib() {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool memfd = false;
  size_t kib = 0;
  while (std::getline(in, line)) {
    const std::string first = line.substr(0, line.find(' '));
    if (first.empty() || first.back() != ':') {
      memfd = line.find("/memfd:") != std::string::npos;
    } else if (memfd && first == "Rss:") {
      kib += std::stoul(line.substr(4));
    }
  }
  return kib;
}

// A connection that carried large messages and went idle gives its rings'
// pages back (each side trims the ring it writes about a second after its
// last write), instead of keeping every page a message ever touched.
TEST_P(ShmOnlyTest, IdleConnectionGivesItsRingPagesBack) {
  StartServer();
  auto stub = Stub();
  EchoRequest req;
  req.set_payload(std::string(3 << 20, 'r'));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // Both 1 MiB rings were filled; once idle they hold next to nothing.
  const size_t busy_kib = RingResidentKib();
  EXPECT_GE(busy_kib, 1024u) << "the rings should have been touched";
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  size_t idle_kib = busy_kib;
  while ((idle_kib = RingResidentKib()) > 64 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(idle_kib, 64u) << "was " << busy_kib << " KiB while busy";
  // And the connection still works, from zero-filled pages.
  grpc::ClientContext ctx;
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.payload(), req.payload());
}

TEST_P(ShmOnlyTest, MessagesLargerThanTheRingAreChunked) {
  StartServer(/*ring_bytes=*/64 * 1024);
  ShmOptions options;
  options.ring_bytes = 64 * 1024;
  auto stub = Stub(options);
  grpc::ClientContext ctx;
  EchoRequest req;
  std::string payload(8 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  req.set_payload(payload);
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(resp.payload() == payload);
}

TEST_P(TransportE2ETest, ManyConcurrentCallsOnOneConnection) {
  StartServer();
  auto stub = Stub();
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message(std::to_string(t * 1000 + i));
        EchoResponse resp;
        if (stub->Unary(&ctx, req, &resp).ok() && resp.message() == req.message()) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
}

TEST_P(TransportE2ETest, ManyConcurrentStreamsWithAsyncApi) {
  StartServer();
  auto stub = Stub();
  constexpr int kCalls = 1000;
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext ctx;
    EchoResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoResponse>> rpc;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kCalls; ++i) {
    auto call = std::make_unique<Call>();
    EchoRequest req;
    req.set_message(std::to_string(i));
    call->rpc = stub->AsyncUnary(&call->ctx, req, &cq);
    call->rpc->Finish(&call->resp, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    void* tag;
    bool success;
    ASSERT_TRUE(cq.Next(&tag, &success));
    auto* call = static_cast<Call*>(tag);
    if (success && call->status.ok()) ++ok;
  }
  EXPECT_EQ(ok, kCalls);
}

TEST_P(TransportE2ETest, PerCallCompressionRoundTrips) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  EchoRequest req;
  req.set_payload(std::string(100000, 'z'));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.payload(), req.payload());
}

// Starts a server stream that sends one message and then waits for the
// client to cancel, and reads that message: the call is in flight on the
// server when this returns (nullptr if not).
std::unique_ptr<grpc::ClientReader<EchoResponse>> StartCallInFlight(EchoTest::Stub& stub,
                                                                    grpc::ClientContext* ctx) {
  EchoRequest req;
  req.set_count(1);
  req.set_wait_for_cancel(true);
  auto reader = stub.ServerStream(ctx, req);
  EchoResponse resp;
  if (!reader->Read(&resp)) return nullptr;
  return reader;
}

TEST_P(TransportE2ETest, PeerDeathFailsInFlightCallsWithUnavailable) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  // Were the death missed, the call would end at this deadline instead, with
  // DEADLINE_EXCEEDED. How fast it is seen is the chaos harness's figure to
  // report, not this test's to assert.
  ctx.set_deadline(In(std::chrono::seconds(30)));
  auto reader = StartCallInFlight(*stub, &ctx);
  ASSERT_NE(reader, nullptr);
  auto killed_at = Clock::now();
  server_->Kill();
  EchoResponse resp;
  EXPECT_FALSE(reader->Read(&resp));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  std::printf("[ info ] death seen after %.1f ms\n",
              std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
}

// Keepalive (GRPC_ARG_KEEPALIVE_TIME_MS) catches a server that is alive but
// stuck, which a dead one's hang-up does not: here stopped (SIGSTOP) while a
// call waits on it. The call fails with UNAVAILABLE instead of waiting.
TEST_P(TransportE2ETest, KeepaliveFailsCallsToAServerThatStopsAnswering) {
  // Lets the HTTP/2 oracle ping this often without a GOAWAY for it.
  StartServer(0, 0,
              {"--channel-arg=grpc.http2.min_ping_interval_without_data_ms=1",
               "--channel-arg=grpc.http2.max_ping_strikes=0"});
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 100);
  // A timeout a live server, however loaded, never misses.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto stub = EchoTest::NewStub(grpc::CreateCustomChannel(Target(), Credentials(), args));
  grpc::ClientContext ctx;
  // Were the stall missed, the call would end here with DEADLINE_EXCEEDED.
  ctx.set_deadline(In(std::chrono::seconds(30)));
  auto reader = StartCallInFlight(*stub, &ctx);
  ASSERT_NE(reader, nullptr);
  ASSERT_EQ(::kill(server_->pid(), SIGSTOP), 0);
  EchoResponse resp;
  EXPECT_FALSE(reader->Read(&resp));
  grpc::Status status = reader->Finish();
  ::kill(server_->pid(), SIGCONT);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("keepalive"), std::string::npos) << status.error_message();
}

TEST_P(TransportE2ETest, ClientDeathCancelsServerCalls) {
  StartServer();
  std::vector<std::string> args = {GRPC_SHM_ECHO_SERVER, "--call=" + Target()};
  if (transport() == Transport::kShm) args.push_back("--call-shm");
  ServerProcess client(args);
  ASSERT_TRUE(client.ok()) << "the doomed client did not get its call going";
  client.Kill();
  EXPECT_EQ(server_->ReadLineStartingWith("CANCELLED"), "CANCELLED client-death");
  // The server keeps serving.
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  EXPECT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
}

TEST_P(TransportE2ETest, NewCallsAfterServerDiesFailWithUnavailable) {
  StartServer();
  auto stub = Stub();
  {
    grpc::ClientContext ctx;
    EchoResponse resp;
    ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  }
  server_->Kill();
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(10)));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_P(TransportE2ETest, ClientReconnectsAfterServerRestart) {
  StartServer();
  auto stub = Stub();
  {
    grpc::ClientContext ctx;
    EchoResponse resp;
    ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  }
  RestartServer();
  // A call issued before the channel noticed the old connection died fails
  // with UNAVAILABLE on every transport; wait until it has noticed.
  auto deadline = In(std::chrono::seconds(20));
  while (channel_->GetState(false) == GRPC_CHANNEL_READY) {
    ASSERT_TRUE(channel_->WaitForStateChange(GRPC_CHANNEL_READY, deadline));
  }
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(In(std::chrono::seconds(20)));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
}

TEST_P(TransportE2ETest, ServerShutdownLetsInFlightCallsFinish) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  auto stream = stub->Bidi(&ctx);
  EchoRequest req;
  req.set_message("before");
  ASSERT_TRUE(stream->Write(req));
  EchoResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  server_->Send("shutdown 20000");
  // The in-flight call keeps working until the client finishes it.
  req.set_message("during");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.message(), "during");
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_code() << " " << finished.error_message();
  EXPECT_EQ(server_->ReadLineStartingWith("SHUTDOWN_DONE"), "SHUTDOWN_DONE");
  EXPECT_EQ(server_->Wait(), 0);
  // New calls now fail.
  grpc::ClientContext ctx2;
  ctx2.set_deadline(In(std::chrono::seconds(10)));
  grpc::Status status = stub->Unary(&ctx2, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_P(TransportE2ETest, ServerShutdownDeadlineCancelsStuckCalls) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_count(1);
  req.set_wait_for_cancel(true);
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  server_->Send("shutdown 100");
  EXPECT_FALSE(reader->Read(&resp));
  grpc::Status status = reader->Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(server_->ReadLineStartingWith("SHUTDOWN_DONE"), "SHUTDOWN_DONE");
}

TEST_P(ShmOnlyTest, FilesystemSocketAddressWorks) {
  char dir[] = "/tmp/grpc_shm_e2e_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  address_ = std::string("shm://") + dir + "/server.sock";
  server_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{GRPC_SHM_ECHO_SERVER, "--shm=" + address_});
  ASSERT_TRUE(server_->ok());
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  EXPECT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  server_.reset();
  unlink((std::string(dir) + "/server.sock").c_str());
  rmdir(dir);
}

TEST_P(ShmOnlyTest, MalformedAddressFailsCallsWithUnavailable) {
  auto channel = grpc::CreateChannel("shm:relative/path", ChannelCredentials());
  auto stub = EchoTest::NewStub(channel);
  grpc::ClientContext ctx;
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("shm:relative/path"), std::string::npos)
      << status.error_message();
}

TEST_P(ShmOnlyTest, NobodyListeningFailsWithUnavailable) {
  address_ = UniqueAbstractAddress();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_P(TransportE2ETest, SixtyFourMebibyteMessagesBothWays) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_payload(std::string(64 << 20, 'p'));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.payload().size(), req.payload().size());
  EXPECT_TRUE(resp.payload() == req.payload());
}

TEST_P(TransportE2ETest, MaxReceiveMessageSizeIsEnforced) {
  StartServer();
  // A channel with gRPC's default 4 MiB receive limit.
  auto stub = EchoTest::NewStub(grpc::CreateChannel(Target(), Credentials()));
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_response_bytes(5 << 20);
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST_P(TransportE2ETest, CallbackApiUnary) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_message("callback");
  EchoResponse resp;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub->async()->Unary(&ctx, &req, &resp, [&](grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu);
    result = status;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  EXPECT_TRUE(result.ok()) << result.error_message();
  EXPECT_EQ(resp.message(), "callback");
}

// Counts the calls it sees: proves interceptors run on shm channels.
class CountingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CountingInterceptor(std::atomic<int>* count) : count_(count) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      ++*count_;
      methods->GetSendInitialMetadata()->insert({"x-intercepted", "yes"});
    }
    methods->Proceed();
  }

 private:
  std::atomic<int>* count_;
};

class CountingInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CountingInterceptorFactory(std::atomic<int>* count) : count_(count) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CountingInterceptor(count_);
  }

 private:
  std::atomic<int>* count_;
};

TEST_P(TransportE2ETest, ClientInterceptorsRun) {
  StartServer();
  std::atomic<int> count{0};
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CountingInterceptorFactory>(&count));
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      Target(), Credentials(), grpc::ChannelArguments(), std::move(factories));
  auto stub = EchoTest::NewStub(channel);
  grpc::ClientContext ctx;
  EchoResponse resp;
  ASSERT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  EXPECT_EQ(count.load(), 1);
  auto it = ctx.GetServerInitialMetadata().find("x-intercepted");
  ASSERT_NE(it, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "yes");
}

// Channel arguments that pause the client's reading at 1 MiB unread.
grpc::ChannelArguments WithOneMebibyteInboundCap() {
  grpc::ChannelArguments args;
  args.SetInt("grpc_shm.max_inbound_bytes", 1 << 20);
  return args;
}

// Starts a server stream of 64 messages of 64 KiB ("paused0".."paused63")
// and returns once the server has written 24 of them: with none read by the
// application, more than a 1 MiB inbound cap has reached the client, so its
// transport has paused reading.
std::unique_ptr<grpc::ClientReader<EchoResponse>> StartStreamPastTheInboundCap(
    EchoTest::Stub& stub, grpc::ClientContext* ctx, ServerProcess& server) {
  EchoRequest req;
  req.set_message("paused");
  req.set_count(64);
  req.set_response_bytes(64 << 10);
  req.set_announce_writes(true);
  auto reader = stub.ServerStream(ctx, req);
  EXPECT_EQ(server.ReadLineStartingWith("WROTE paused 23"), "WROTE paused 23");
  return reader;
}

// The client's transport stops reading its ring once the messages gRPC has
// not asked for reach grpc_shm.max_inbound_bytes (the server's writes then
// wait for ring space), and reads on once they are taken: nothing is lost.
TEST_P(ShmOnlyTest, ReadingPausedAtTheInboundCapLosesNothing) {
  StartServer();
  auto stub = EchoTest::NewStub(
      grpc::CreateCustomChannel(Target(), Credentials(), WithOneMebibyteInboundCap()));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(30)));
  auto reader = StartStreamPastTheInboundCap(*stub, &ctx, *server_);
  EchoResponse resp;
  int received = 0;
  while (reader->Read(&resp)) {
    EXPECT_EQ(resp.message(), "paused" + std::to_string(received));
    EXPECT_EQ(resp.payload().size(), size_t{64} << 10);
    ++received;
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, 64);
}

// A client whose application has not taken its messages stops reading its
// ring (the inbound cap), so the server's messages and anything queued
// behind them wait. It is alive, though: while another call keeps it
// polling, the server's keepalive pings, which go around the ring, are
// answered, and the connection stays up. (A client that polls nothing
// answers no ping, over any transport: gRPC reads only while a thread waits
// on it, so keepalive timeouts are seconds, not milliseconds.)
TEST_P(ShmOnlyTest, KeepaliveSparesAClientWhoseReadingIsPaused) {
  // A ping every 20 ms, and a timeout a live client, however loaded
  // (sanitizers, both cores busy), never misses.
  StartServer(
      0, 0,
      {"--channel-arg=grpc.keepalive_time_ms=20", "--channel-arg=grpc.keepalive_timeout_ms=5000"});
  auto stub = EchoTest::NewStub(
      grpc::CreateCustomChannel(Target(), Credentials(), WithOneMebibyteInboundCap()));
  // A call that waits for the server keeps a thread polling the connection
  // from start to end.
  grpc::ClientContext waiting_ctx;
  waiting_ctx.set_deadline(In(std::chrono::seconds(30)));
  std::thread waiting_call([&] {
    EchoRequest req;
    req.set_message("waiting");
    req.set_wait_for_cancel(true);
    EchoResponse resp;
    grpc::Status status = stub->Unary(&waiting_ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
  });
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(30)));
  auto reader = StartStreamPastTheInboundCap(*stub, &ctx, *server_);
  // Several of the server's pings come and are answered while it stays so.
  const uint64_t answered = transport::KeepalivePingsAnswered();
  const auto give_up = Clock::now() + std::chrono::seconds(20);
  while (transport::KeepalivePingsAnswered() < answered + 5 && Clock::now() < give_up) {
    std::this_thread::yield();
  }
  EXPECT_GE(transport::KeepalivePingsAnswered(), answered + 5);
  EchoResponse resp;
  int received = 0;
  while (reader->Read(&resp)) ++received;
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, 64);
  waiting_ctx.TryCancel();
  waiting_call.join();
}

// A client that speaks the IPC protocol but sends garbage. The server must
// drop that connection only, and keep serving everyone else.
TEST_P(ShmOnlyTest, HostileClientDoesNotDisturbOthers) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx0;
  EchoResponse resp;
  ASSERT_TRUE(stub->Unary(&ctx0, EchoRequest(), &resp).ok());

  const std::string ipc_address = grpc_shm::testing::IpcAddressOf(address_);
  {
    // Undecodable metadata opening a stream: that stream is refused.
    std::unique_ptr<ipc::Connection> conn;
    ASSERT_TRUE(ipc::Connect(ipc_address, ipc::DefaultConnectionOptions(), &conn).ok());
    ipc::FrameView settings;
    ASSERT_TRUE(
        conn->ReadFrame(&settings, ipc::Connection::Clock::now() + std::chrono::seconds(10)).ok());
    EXPECT_EQ(settings.header.type, ipc::kFrameSettings);
    conn->Consume();
    ipc::FrameHeader header{};
    header.type = ipc::kFrameInitialMetadata;
    header.stream_id = 1;
    const uint8_t junk[8] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    header.payload_size = sizeof(junk);
    ipc::ConstByteSpan part{junk, sizeof(junk)};
    ASSERT_TRUE(conn->WriteFrame(header, &part, 1).ok());
    ipc::FrameView frame;
    ASSERT_TRUE(
        conn->ReadFrame(&frame, ipc::Connection::Clock::now() + std::chrono::seconds(10)).ok());
    EXPECT_EQ(frame.header.type, ipc::kFrameReset);
    EXPECT_EQ(frame.header.aux, static_cast<uint32_t>(grpc::StatusCode::INTERNAL));
    conn->Consume();
  }
  {
    // An unknown frame type: the server hangs up on this connection.
    std::unique_ptr<ipc::Connection> conn;
    ASSERT_TRUE(ipc::Connect(ipc_address, ipc::DefaultConnectionOptions(), &conn).ok());
    ipc::FrameView settings;
    ASSERT_TRUE(
        conn->ReadFrame(&settings, ipc::Connection::Clock::now() + std::chrono::seconds(10)).ok());
    conn->Consume();
    ipc::FrameHeader header{};
    header.type = 200;
    header.stream_id = 1;
    ASSERT_TRUE(conn->WriteFrame(header, nullptr, 0).ok());
    ipc::FrameView frame;
    ipc::Status status =
        conn->ReadFrame(&frame, ipc::Connection::Clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(status.code(), ipc::StatusCode::kPeerClosed) << status.ToString();
  }
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub->Unary(&ctx, EchoRequest(), &resp).ok());
  grpc::ClientContext ctx2;
  auto fresh = Stub();
  EXPECT_TRUE(fresh->Unary(&ctx2, EchoRequest(), &resp).ok());
}

// A client that connects and then says nothing holds its handshake for up to
// the server's handshake timeout (5 s here). Other clients' handshakes must
// not queue behind it: with three silent clients ahead of it, a real one
// still connects and gets its answer within a 3 s deadline.
// The server's half of each handshake runs on its poller and never waits
// for a client, so no number of clients that connect and say nothing, or
// stall halfway through their hello, delays anyone else. (With a thread
// per pending handshake, capped at 8, this took the 5 s handshake timeout.)
TEST_P(ShmOnlyTest, SilentClientsDoNotHoldUpOtherClientsHandshakes) {
  StartServer();
  const std::string ipc_address = grpc_shm::testing::IpcAddressOf(address_);
  std::vector<platform::UniqueHandle> silent(32);
  for (auto& socket : silent) {
    ASSERT_TRUE(platform::ConnectLocal(ipc_address, 5000, &socket).ok());
  }
  std::vector<platform::UniqueHandle> stalled(8);
  const char half_hello[12] = {};
  for (auto& socket : stalled) {
    ASSERT_TRUE(platform::ConnectLocal(ipc_address, 5000, &socket).ok());
    ASSERT_TRUE(platform::SendMessage(socket.get(), half_hello, sizeof(half_hello), {}, 5000).ok());
  }
  for (int i = 0; i < 2; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    auto stub = EchoTest::NewStub(grpc::CreateCustomChannel(Target(), Credentials(), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
    EXPECT_TRUE(status.ok()) << "client " << i << ": " << status.error_message();
  }
}

// Not the main deployment, but common in tests and examples: one process
// serving and calling itself over shm.
class InProcessEcho final : public EchoTest::Service {
  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* req, EchoResponse* resp) override {
    resp->set_message(req->message());
    return grpc::Status::OK;
  }
};

// A server for `service` on `address` (shm) in this process; null if it
// cannot start.
std::unique_ptr<grpc::Server> StartInProcessServer(const std::string& address,
                                                   InProcessEcho* service) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, ServerCredentials());
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

TEST_P(ShmOnlyTest, ClientAndServerInOneProcess) {
  InProcessEcho service;
  std::unique_ptr<grpc::Server> server = StartInProcessServer(address_, &service);
  ASSERT_NE(server, nullptr);
  auto stub = Stub();
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message("self");
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "self");
  }
  server->Shutdown();
}

// Shutting a server down ends the handshakes still under way at once (the
// clients see a hang-up, not the handshake timeout) and frees its address
// for a new server straight away.
TEST_P(ShmOnlyTest, ServerShutdownEndsPendingHandshakesAndFreesTheAddress) {
  const std::string ipc_address = grpc_shm::testing::IpcAddressOf(address_);
  std::vector<platform::UniqueHandle> silent(3);
  {
    InProcessEcho service;
    std::unique_ptr<grpc::Server> server = StartInProcessServer(address_, &service);
    ASSERT_NE(server, nullptr);
    for (auto& socket : silent) {
      ASSERT_TRUE(platform::ConnectLocal(ipc_address, 5000, &socket).ok());
    }
    server->Shutdown();
  }
  for (auto& socket : silent) {
    // Well inside the 5 s handshake timeout.
    EXPECT_EQ(platform::WaitForHangup(socket.get(), 2000).code(), ipc::StatusCode::kPeerClosed);
  }
  InProcessEcho service;
  std::unique_ptr<grpc::Server> server = StartInProcessServer(address_, &service);
  ASSERT_NE(server, nullptr) << "the address is still taken";
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EchoResponse resp;
  EXPECT_TRUE(Stub()->Unary(&ctx, EchoRequest(), &resp).ok());
  server->Shutdown();
}

TEST_P(ShmOnlyTest, BadServerAddressFailsBuildAndStart) {
  InProcessEcho service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("shm:not-absolute", ServerCredentials());
  builder.RegisterService(&service);
  EXPECT_EQ(builder.BuildAndStart(), nullptr);
}

TEST_P(TransportE2ETest, ManyConnectionsToOneServer) {
  StartServer();
  constexpr int kChannels = 32;
  std::vector<std::unique_ptr<EchoTest::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    // Otherwise gRPC shares one subchannel (one connection) among channels.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(EchoTest::NewStub(grpc::CreateCustomChannel(Target(), Credentials(), args)));
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& stub : stubs) {
      grpc::ClientContext ctx;
      EchoResponse resp;
      grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }
}

TEST_P(ShmOnlyTest, WaitForReadyWaitsForTheServerToStart) {
  auto stub = Stub();
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(In(std::chrono::seconds(30)));
  EchoRequest req;
  req.set_message("early");
  EchoResponse resp;
  grpc::Status status;
  auto rpc = stub->AsyncUnary(&ctx, req, &cq);
  rpc->Finish(&resp, &status, nullptr);
  StartServer();
  void* tag;
  bool ok;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.message(), "early");
}

// A client that reads more slowly than the server writes: the transport
// stops taking messages off the ring past its inbound limit (64 MiB), the
// server's writes then wait, and everything still arrives once read.
// Flow control is per stream, as with HTTP/2: a stream whose reader does
// not read holds back only that stream's sender, so other calls on the same
// connection go on. The stream below offers 96 MiB, more than a connection
// buffers before it stops reading the ring; the connection is read while
// the unary calls wait for their answers, so without per-stream windows the
// unread stream filled that buffer and a later call waited behind it.
TEST_P(TransportE2ETest, UnreadStreamDoesNotBlockOtherCallsOnTheConnection) {
  StartServer();
  auto stub = Stub();
  constexpr int kResponses = 96;
  grpc::ClientContext stream_ctx;
  stream_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  EchoRequest stream_req;
  stream_req.set_count(kResponses);
  stream_req.set_response_bytes(1 << 20);
  auto reader = stub->ServerStream(&stream_ctx, stream_req);
  EchoResponse first;
  ASSERT_TRUE(reader->Read(&first));  // the stream is under way; now nobody reads it

  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EchoRequest req;
    req.set_message("meanwhile");
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status.error_message();
    EXPECT_EQ(resp.message(), "meanwhile");
  }

  int received = 1;
  EchoResponse resp;
  while (reader->Read(&resp)) {
    EXPECT_EQ(resp.payload().size(), size_t{1} << 20);
    ++received;
  }
  EXPECT_EQ(received, kResponses);
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// The server ends a client-streaming call without reading on: the client's
// writes that wait for window (which will never come back) fail, and the
// call ends with the server's status, as over HTTP/2.
TEST_P(TransportE2ETest, WritesFailOnceTheServerEndedTheCall) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoResponse resp;
  auto writer = stub->ClientStream(&ctx, &resp);
  EchoRequest stop;
  stop.set_status_code(static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  stop.set_status_message("enough");
  ASSERT_TRUE(writer->Write(stop));
  EchoRequest big;
  big.set_payload(std::string(256 << 10, 'w'));
  int written = 0;
  while (written < 256 && writer->Write(big)) ++written;  // 64 MiB would do
  EXPECT_LT(written, 256) << "every write succeeded after the server ended the call";
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(status.error_message(), "enough");
}

// Full duplex: the client writes every message on one thread while it reads
// the echoes on another, so both directions are in flight at once, each
// with its window spent. A window grant must never wait behind a message
// that itself waits for window, or both sides stall for ever.
struct DuplexShape {
  int messages;
  size_t bytes;
};

void RunFullDuplexBidi(EchoTest::Stub* stub, const DuplexShape& shape) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::milliseconds(60000)));
  auto stream = stub->Bidi(&ctx);
  std::thread writer([&] {
    EchoRequest req;
    req.set_payload(std::string(shape.bytes, 'd'));
    for (int i = 0; i < shape.messages; ++i) {
      req.set_message(std::to_string(i));
      if (!stream->Write(req)) return;
    }
    stream->WritesDone();
  });
  int received = 0;
  EchoResponse resp;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.message(), std::to_string(received));
    EXPECT_EQ(resp.payload().size(), shape.bytes);
    ++received;
  }
  writer.join();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message() << " after " << received << " of "
                           << shape.messages << " x " << shape.bytes << " bytes";
  EXPECT_EQ(received, shape.messages);
}

TEST_P(TransportE2ETest, FullDuplexBidiNeverStalls) {
  StartServer();
  auto stub = Stub();
  // The shapes that hung before, several times each (it took 2-5 runs).
  for (int round = 0; round < 3; ++round) {
    for (DuplexShape shape :
         {DuplexShape{64, 1 << 20}, DuplexShape{16, 8 << 20}, DuplexShape{2000, 4 << 10}}) {
      SCOPED_TRACE(std::to_string(shape.messages) + " x " + std::to_string(shape.bytes));
      RunFullDuplexBidi(stub.get(), shape);
    }
  }
}

TEST_P(TransportE2ETest, FullDuplexBidiQuarterGibibyteEachWay) {
  StartServer();
  auto stub = Stub();
  RunFullDuplexBidi(stub.get(), DuplexShape{64, 4 << 20});  // 256 MiB each way
}

TEST_P(TransportE2ETest, SlowReaderGetsEveryMessage) {
  StartServer();
  auto stub = Stub();
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_count(100);
  req.set_response_bytes(1 << 20);
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  int n = 1;
  // Not synchronisation: a slow reader, so that the server gets ahead and
  // the limit is usually hit. The test passes either way; it checks that
  // pausing and resuming lose nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  while (reader->Read(&resp)) {
    ASSERT_EQ(resp.payload().size(), 1u << 20);
    ++n;
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(n, 100);
}

TEST_P(ShmOnlyTest, ServerAllowListRefusesOtherUsers) {
  server_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{GRPC_SHM_ECHO_SERVER, "--shm=" + address_, "--deny-self"});
  ASSERT_TRUE(server_->ok());
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(10)));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The refusal happens in the handshake, so the client is told why.
  EXPECT_NE(status.error_message().find("uid " + std::to_string(getuid())), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("is not in the server's allow-list"), std::string::npos)
      << status.error_message();
}

}  // namespace
}  // namespace grpc_shm
