// The server side of every gRPC C++ API over the shm transport, with UDS and
// TCP as the oracle: callback services (unary and bidi reactors), the
// completion-queue async API, and server interceptors; and gRPC's retries,
// which replay a call's messages on a new stream of the same connection,
// client-side health checking, whose watch stream gRPC runs itself, and the
// server's max_connection_age, which ends connections with a GOAWAY. The servers run in
// this process (the APIs are what is under test; cross-process behaviour is
// covered by transport_e2e_test).
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "test_address.h"

namespace grpc_shm {
namespace {

using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;

enum class Transport { kShm, kUds, kTcp };

std::string Name(const ::testing::TestParamInfo<Transport>& info) {
  return info.param == Transport::kShm ? "Shm" : info.param == Transport::kUds ? "Uds" : "Tcp";
}

class CallbackEcho final : public EchoTest::CallbackService {
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const EchoRequest* req,
                                  EchoResponse* resp) override {
    resp->set_message("callback:" + req->message());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerBidiReactor<EchoRequest, EchoResponse>* Bidi(grpc::CallbackServerContext*) override {
    // Echoes each message as it comes; finishes when the client half-closes.
    class Echoer : public grpc::ServerBidiReactor<EchoRequest, EchoResponse> {
     public:
      Echoer() { StartRead(&req_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::OK);
          return;
        }
        resp_.set_message(req_.message());
        StartWrite(&resp_);
      }
      void OnWriteDone(bool ok) override {
        if (ok) {
          StartRead(&req_);
        } else {
          Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
        }
      }
      void OnDone() override { delete this; }

     private:
      EchoRequest req_;
      EchoResponse resp_;
    };
    return new Echoer;
  }
};

// Adds response metadata and counts calls: proves interceptors run on shm.
class TaggingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TaggingInterceptor(std::atomic<int>* calls) : calls_(calls) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      calls_->fetch_add(1);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("x-intercepted", "yes");
    }
    methods->Proceed();
  }

 private:
  std::atomic<int>* calls_;
};

class TaggingInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TaggingInterceptorFactory(std::atomic<int>* calls) : calls_(calls) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new TaggingInterceptor(calls_);
  }

 private:
  std::atomic<int>* calls_;
};

// Fails the first `failures` attempts of each method with UNAVAILABLE, then
// answers; counts attempts. ClientStream reads every message before it
// decides, so a retried attempt must have been sent them all again.
class FlakyEcho final : public EchoTest::Service {
 public:
  explicit FlakyEcho(int failures) : failures_(failures) {}

  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* req, EchoResponse* resp) override {
    if (attempts_.fetch_add(1) < failures_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try again");
    }
    resp->set_message(req->message());
    return grpc::Status::OK;
  }
  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<EchoRequest>* reader,
                            EchoResponse* resp) override {
    EchoRequest req;
    std::string all;
    int received = 0;
    while (reader->Read(&req)) {
      all += req.message();
      ++received;
    }
    if (attempts_.fetch_add(1) < failures_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try again");
    }
    resp->set_message(all);
    resp->set_received(received);
    return grpc::Status::OK;
  }
  int attempts() const { return attempts_.load(); }
  void Reset() { attempts_ = 0; }

 private:
  const int failures_;
  std::atomic<int> attempts_{0};
};

// The sync API's echo: Unary answers "sync:" + the message; Bidi echoes each
// message until the client half-closes.
class SyncEcho final : public EchoTest::Service {
 public:
  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* req, EchoResponse* resp) override {
    resp->set_message("sync:" + req->message());
    return grpc::Status::OK;
  }
  grpc::Status Bidi(grpc::ServerContext*,
                    grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest req;
    while (stream->Read(&req)) {
      EchoResponse resp;
      resp.set_message(req.message());
      if (!stream->Write(resp)) break;
    }
    return grpc::Status::OK;
  }
};

class ServerApiTest : public ::testing::TestWithParam<Transport> {
 protected:
  // Builds and starts a server for `service`, listening on this test's
  // transport; `configure` adds to the builder first (channel arguments,
  // interceptors, a completion queue). Channel() and Stub() connect to it.
  std::unique_ptr<grpc::Server> StartServer(
      grpc::Service* service, const std::function<void(grpc::ServerBuilder&)>& configure = {}) {
    grpc::ServerBuilder builder;
    Listen(builder);
    builder.RegisterService(service);
    if (configure) configure(builder);
    auto server = builder.BuildAndStart();
    if (GetParam() == Transport::kTcp) target_ = "127.0.0.1:" + std::to_string(port_);
    return server;
  }
  std::shared_ptr<grpc::Channel> Channel(const grpc::ChannelArguments& args = {}) {
    auto creds =
        GetParam() == Transport::kShm ? ChannelCredentials() : grpc::InsecureChannelCredentials();
    return grpc::CreateCustomChannel(target_, creds, args);
  }
  std::unique_ptr<EchoTest::Stub> Stub(const grpc::ChannelArguments& args = {}) {
    return EchoTest::NewStub(Channel(args));
  }

 private:
  void Listen(grpc::ServerBuilder& builder) {
    static std::atomic<int> n{0};
    const std::string id = std::to_string(getpid()) + "_" + std::to_string(n++);
    switch (GetParam()) {
      case Transport::kShm:
        target_ = grpc_shm::testing::TestShmTarget("grpc_shm_server_api_" + id);
        builder.AddListeningPort(target_, ServerCredentials());
        break;
      case Transport::kUds:
        target_ = "unix:/tmp/grpc_shm_server_api_" + id + ".sock";
        builder.AddListeningPort(target_, grpc::InsecureServerCredentials());
        break;
      case Transport::kTcp:
        builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
        break;
    }
  }

  std::string target_;
  int port_ = 0;
};

TEST_P(ServerApiTest, CallbackServiceUnaryAndBidi) {
  CallbackEcho service;
  auto server = StartServer(&service);
  ASSERT_NE(server, nullptr);
  auto stub = Stub();
  {
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message("hi");
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "callback:hi");
  }
  grpc::ClientContext ctx;
  auto stream = stub->Bidi(&ctx);
  for (int i = 0; i < 20; ++i) {
    EchoRequest req;
    req.set_message("m" + std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
    EchoResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.message(), req.message());
  }
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->Shutdown();
}

// A service config's retry policy: attempts that fail with a retryable code
// are sent again, with their messages, until one succeeds.
TEST_P(ServerApiTest, RetryPolicyRetriesUnaryAndClientStreamingCalls) {
  FlakyEcho service(/*failures=*/2);
  auto server = StartServer(&service);
  ASSERT_NE(server, nullptr);
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"methodConfig": [{
      "name": [{"service": "grpc_shm.test.EchoTest"}],
      "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                      "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
  auto stub = Stub(args);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EchoRequest req;
    req.set_message("unary");
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "unary");
    EXPECT_EQ(service.attempts(), 3);
  }
  service.Reset();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EchoResponse resp;
  auto writer = stub->ClientStream(&ctx, &resp);
  std::string sent;
  for (int i = 0; i < 10; ++i) {
    EchoRequest req;
    req.set_message("m" + std::to_string(i));
    sent += req.message();
    ASSERT_TRUE(writer->Write(req));
  }
  ASSERT_TRUE(writer->WritesDone());
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.message(), sent);  // the third attempt got every message
  EXPECT_EQ(resp.received(), 10);
  EXPECT_EQ(service.attempts(), 3);
  server->Shutdown();
}

// A service config's healthCheckConfig: gRPC watches the server's health
// service on each connection (a stream of its own, whose messages it reads
// without asking for their flags) and routes calls only while it says
// SERVING. Over shm that watch used to crash the client.
TEST_P(ServerApiTest, ClientSideHealthCheckingFollowsTheServersStatus) {
  grpc::EnableDefaultHealthCheckService(true);
  FlakyEcho service(/*failures=*/0);
  auto server = StartServer(&service);
  ASSERT_NE(server, nullptr);
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"healthCheckConfig": {"serviceName": ""},
                                "loadBalancingConfig": [{"round_robin": {}}]})");
  auto stub = Stub(args);
  auto call = [&stub](bool wait_for_ready) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(wait_for_ready);
    EchoRequest req;
    req.set_message("healthy?");
    EchoResponse resp;
    return stub->Unary(&ctx, req, &resp);
  };
  grpc::Status status = call(/*wait_for_ready=*/true);
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->GetHealthCheckService()->SetServingStatus(false);
  // The client learns it from the watch stream; calls then fail at once.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((status = call(/*wait_for_ready=*/false)).ok() &&
         std::chrono::steady_clock::now() < give_up) {
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("backend unhealthy"), std::string::npos)
      << status.error_message();
  server->GetHealthCheckService()->SetServingStatus(true);
  status = call(/*wait_for_ready=*/true);
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->Shutdown();
}

TEST_P(ServerApiTest, CompletionQueueAsyncServiceUnary) {
  EchoTest::AsyncService service;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  auto server =
      StartServer(&service, [&cq](grpc::ServerBuilder& b) { cq = b.AddCompletionQueue(); });
  ASSERT_NE(server, nullptr);
  constexpr int kCalls = 10;
  // The server loop: one outstanding RequestUnary at a time, answered inline.
  std::thread server_thread([&] {
    for (int i = 0; i < kCalls; ++i) {
      grpc::ServerContext ctx;
      EchoRequest req;
      grpc::ServerAsyncResponseWriter<EchoResponse> responder(&ctx);
      service.RequestUnary(&ctx, &req, &responder, cq.get(), cq.get(), &ctx);
      void* tag;
      bool ok;
      if (!cq->Next(&tag, &ok) || !ok) return;
      EchoResponse resp;
      resp.set_message("async:" + req.message());
      responder.Finish(resp, grpc::Status::OK, &responder);
      if (!cq->Next(&tag, &ok)) return;
    }
  });
  auto stub = Stub();
  for (int i = 0; i < kCalls; ++i) {
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message(std::to_string(i));
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "async:" + std::to_string(i));
  }
  server_thread.join();
  server->Shutdown();
  cq->Shutdown();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
  }
}

TEST_P(ServerApiTest, ServerInterceptorsRun) {
  CallbackEcho service;
  std::atomic<int> calls{0};
  auto server = StartServer(&service, [&calls](grpc::ServerBuilder& b) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<TaggingInterceptorFactory>(&calls));
    b.experimental().SetInterceptorCreators(std::move(factories));
  });
  ASSERT_NE(server, nullptr);
  auto stub = Stub();
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    EchoRequest req;
    EchoResponse resp;
    ASSERT_TRUE(stub->Unary(&ctx, req, &resp).ok());
    auto it = ctx.GetServerInitialMetadata().find("x-intercepted");
    ASSERT_NE(it, ctx.GetServerInitialMetadata().end());
    EXPECT_EQ(std::string(it->second.data(), it->second.size()), "yes");
  }
  EXPECT_EQ(calls.load(), 3);
  server->Shutdown();
}

// StartServer's `configure` for a server whose connections end at that age.
std::function<void(grpc::ServerBuilder&)> MaxConnectionAge(int age_ms, int grace_ms) {
  return [=](grpc::ServerBuilder& b) {
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, age_ms);
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, grace_ms);
  };
}

// Server-side max_connection_age: the server ends each connection with a
// GOAWAY once it is that old. Calls already running finish on it within the
// grace period, new calls go to a new connection, and nothing fails. Every
// connection ages, so over shm the five calls race the GOAWAYs of new
// connections too; chttp2 loses that race now and then (a call written as
// the server hangs up fails with "Broken pipe"; over shm it is retried, see
// GoawayTest in hostile_transport_test.cc), so the oracles' connections live
// long enough for the calls.
TEST_P(ServerApiTest, MaxConnectionAgeMovesNewCallsToANewConnection) {
  SyncEcho service;
  const int age_ms = GetParam() == Transport::kShm ? 100 : 1000;
  auto server = StartServer(&service, MaxConnectionAge(age_ms, /*grace_ms=*/60000));
  ASSERT_NE(server, nullptr);
  auto channel = Channel();
  auto stub = EchoTest::NewStub(channel);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(30);
  grpc::ClientContext stream_ctx;
  stream_ctx.set_deadline(deadline);
  auto stream = stub->Bidi(&stream_ctx);
  auto echo_on_stream = [&stream](const std::string& text) {
    EchoRequest req;
    req.set_message(text);
    EchoResponse resp;
    return stream->Write(req) && stream->Read(&resp) && resp.message() == text;
  };
  ASSERT_TRUE(echo_on_stream("before"));
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // The GOAWAY takes the channel out of READY.
  ASSERT_TRUE(channel->WaitForStateChange(GRPC_CHANNEL_READY, deadline));
  // New calls connect again and succeed.
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    EchoRequest req;
    req.set_message("after " + std::to_string(i));
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "sync:" + req.message());
  }
  // The stream that was running still runs on the old connection.
  EXPECT_TRUE(echo_on_stream("during grace"));
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  server->Shutdown();
}

// Under pressure: two threads call without pause while every connection
// ages out after 50 ms, so calls keep crossing GOAWAYs on the wire and idle
// connections hang up under them. Over shm no call fails. (gRPC retries a
// call the server never saw once only, so a call whose retry crossed the
// next GOAWAY too would fail: the age leaves the retry ample time.) chttp2
// loses some of these races (see above), so only shm runs it.
TEST_P(ServerApiTest, ConnectionsAgingUnderAStreamOfCallsLoseNoCall) {
  if (GetParam() != Transport::kShm) GTEST_SKIP() << "chttp2 fails calls that cross a GOAWAY";
  SyncEcho service;
  auto server = StartServer(&service, MaxConnectionAge(/*age_ms=*/50, /*grace_ms=*/60000));
  ASSERT_NE(server, nullptr);
  auto stub = Stub();
  constexpr int kCallsPerThread = 2000;
  std::mutex mu;
  int failed = 0;
  std::string first_failure;
  auto call_repeatedly = [&](int thread) {
    for (int i = 0; i < kCallsPerThread; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      EchoRequest req;
      req.set_message(std::to_string(thread) + "." + std::to_string(i));
      EchoResponse resp;
      grpc::Status status = stub->Unary(&ctx, req, &resp);
      if (!status.ok() || resp.message() != "sync:" + req.message()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed++ == 0) first_failure = req.message() + ": " + status.error_message();
      }
    }
  };
  std::thread other(call_repeatedly, 1);
  call_repeatedly(0);
  other.join();
  EXPECT_EQ(failed, 0) << "first: " << first_failure;
  server->Shutdown();
}

// Server-side max_connection_idle: a connection without calls for that long
// is ended with a GOAWAY (the channel leaves READY), and the next call
// connects again and succeeds. (Long enough that the new connection's call
// comes well before it idles in turn: chttp2 could lose that race.)
TEST_P(ServerApiTest, MaxConnectionIdleEndsAnIdleConnectionAndTheNextCallReconnects) {
  SyncEcho service;
  auto server = StartServer(&service, [](grpc::ServerBuilder& b) {
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300);
  });
  ASSERT_NE(server, nullptr);
  auto channel = Channel();
  auto stub = EchoTest::NewStub(channel);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(30);
  auto call = [&](const std::string& text) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    EchoRequest req;
    req.set_message(text);
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp.message();
  };
  EXPECT_EQ(call("before"), "sync:before");
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  ASSERT_TRUE(channel->WaitForStateChange(GRPC_CHANNEL_READY, deadline));
  EXPECT_EQ(call("after"), "sync:after");
  server->Shutdown();
}

// Once the grace period is over too, the server closes the old connection
// under a call still running: it fails with UNAVAILABLE, it does not hang.
TEST_P(ServerApiTest, MaxConnectionAgeGraceEndsCallsStillRunning) {
  SyncEcho service;
  auto server = StartServer(&service, MaxConnectionAge(/*age_ms=*/100, /*grace_ms=*/100));
  ASSERT_NE(server, nullptr);
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Bidi(&ctx);
  EchoRequest req;
  req.set_message("first");
  EchoResponse resp;
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  // Blocks until the connection is closed under it (well before the deadline).
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  server->Shutdown();
}

int OpenDescriptors() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// Connections come and go (each channel its own connection, closed when the
// channel goes away): descriptors on both sides return to where they were.
// Closing is asynchronous, so the count is awaited with a deadline.
TEST_P(ServerApiTest, ConnectionsComingAndGoingLeakNoDescriptors) {
  CallbackEcho service;
  auto server = StartServer(&service);
  ASSERT_NE(server, nullptr);
  auto one_connection = [&] {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = Stub(args);
    grpc::ClientContext ctx;
    EchoRequest req;
    EchoResponse resp;
    return stub->Unary(&ctx, req, &resp).ok();
  };
  // Warm up: gRPC creates its own long-lived descriptors on first use.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(one_connection());
  auto settle = [](int limit) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int n = OpenDescriptors();
    while (n > limit && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
      n = OpenDescriptors();
    }
    return n;
  };
  // Taken right after the warm-up: if its last connection is still closing,
  // the baseline is a few descriptors high, while a leak of one per
  // connection would still show as twenty. gRPC's poll engine (the portable
  // build's) keeps a wake-up eventfd per polling thread, and a thread it
  // starts during the twenty connections keeps one open past them (UDS, 13
  // against 12, in one CI run): a slack of two there.
  const char* strategy = std::getenv("GRPC_POLL_STRATEGY");
  const int slack = strategy != nullptr && std::string(strategy) == "poll" ? 2 : 0;
  const int baseline = OpenDescriptors() + slack;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(one_connection());
  EXPECT_LE(settle(baseline), baseline);
  server->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(AllTransports, ServerApiTest,
                         ::testing::Values(Transport::kShm, Transport::kUds, Transport::kTcp),
                         Name);

}  // namespace
}  // namespace grpc_shm
