// Server mode: the echo test service with every handler reporting when it
// starts and how it ended, so the chaos driver can see that each in-flight
// handler noticed a killed client, and checksums verified on every message
// for the soak test. Commands on stdin, one per line:
//   baseline       measure this process once no connection is left
//                  ("BASELINE <usage>")
//   settle <ms>    wait until no handler runs and usage is back to the
//                  baseline ("SETTLED OK|FAIL <usage>")
//   stats          "STATS handlers=<ended> corrupt=<bad checksums>"
//   quit           graceful Shutdown, then exit
#include <grpcpp/grpcpp.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "reliability/peer_common.h"
#include "reliability/process_usage.h"

namespace grpc_shm {
namespace reliability {
namespace {

using grpc::ServerContext;
using grpc::Status;
using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;

class ReliabilityService final : public grpc_shm::test::EchoTest::Service {
 public:
  // false: no line per handler (the soak's thousands of calls a second).
  explicit ReliabilityService(bool report_handlers) : report_handlers_(report_handlers) {}
  int active() const { return active_.load(); }
  int64_t ended() const { return ended_.load(); }
  int64_t corrupt() const { return corrupt_.load(); }

 private:
  // Reports a handler's start; End() reports how it ended.
  class Handler {
   public:
    Handler(ReliabilityService* service, ServerContext* ctx, const char* kind)
        : service_(service), ctx_(ctx), kind_(kind) {
      service_->active_.fetch_add(1);
      if (service_->report_handlers_) {
        Say("HANDLER_START %s %lld", kind_, static_cast<long long>(MonotonicNs()));
      }
    }
    // `failed`: a read or write failed, or the call was meant to run until
    // the client went away; the handler then waits for gRPC to report the
    // cancellation (the sync API has no callback for it), bounded so that a
    // missing one is reported instead of hanging.
    Status End(Status status, bool failed) {
      const char* outcome = "ok";
      if (failed) {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!ctx_->IsCancelled() && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        outcome = ctx_->IsCancelled() ? "cancelled" : "not-cancelled";
        if (status.ok()) status = Status::CANCELLED;
      }
      if (service_->report_handlers_ || failed) {
        Say("HANDLER_END %s %s %lld", kind_, outcome, static_cast<long long>(MonotonicNs()));
      }
      service_->ended_.fetch_add(1);
      service_->active_.fetch_sub(1);
      return status;
    }

   private:
    ReliabilityService* service_;
    ServerContext* ctx_;
    const char* kind_;
  };

  void Verify(const EchoRequest& req) {
    if (req.message().rfind("crc:", 0) != 0) return;
    if (!ChecksumMatches(req.message(), req.payload())) {
      corrupt_.fetch_add(1);
      Say("CORRUPT request of %zu bytes: %s, payload has %s", req.payload().size(),
          req.message().c_str(), ChecksumTag(req.payload()).c_str());
    }
  }

  void Fill(const EchoRequest& req, uint64_t* rng, EchoResponse* resp) {
    if (req.response_bytes() > 0) {
      resp->set_payload(RandomPayload(static_cast<size_t>(req.response_bytes()), rng));
    } else {
      resp->set_payload(req.payload());
    }
    resp->set_message(ChecksumTag(resp->payload()));
  }

  Status Unary(ServerContext* ctx, const EchoRequest* req, EchoResponse* resp) override {
    Handler h(this, ctx, "unary");
    Verify(*req);
    if (req->wait_for_cancel()) return h.End(Status::OK, true);
    uint64_t rng = static_cast<uint64_t>(MonotonicNs());
    Fill(*req, &rng, resp);
    return h.End(Status::OK, false);
  }

  Status ServerStream(ServerContext* ctx, const EchoRequest* req,
                      grpc::ServerWriter<EchoResponse>* writer) override {
    Handler h(this, ctx, "server-stream");
    Verify(*req);
    uint64_t rng = static_cast<uint64_t>(MonotonicNs());
    // count <= 0: stream until the client goes away.
    for (int64_t i = 0; req->count() <= 0 || i < req->count(); ++i) {
      EchoResponse resp;
      Fill(*req, &rng, &resp);
      if (!writer->Write(resp)) return h.End(Status::OK, true);
    }
    return h.End(Status::OK, req->wait_for_cancel());
  }

  // wait_for_cancel on a stream's first message: the client never ends it,
  // so a failed read means the client is gone.
  Status ClientStream(ServerContext* ctx, grpc::ServerReader<EchoRequest>* reader,
                      EchoResponse* resp) override {
    Handler h(this, ctx, "client-stream");
    EchoRequest req;
    int received = 0;
    bool endless = false;
    while (reader->Read(&req)) {
      if (received++ == 0) endless = req.wait_for_cancel();
      Verify(req);
    }
    resp->set_received(received);
    return h.End(Status::OK, endless);
  }

  Status Bidi(ServerContext* ctx,
              grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    Handler h(this, ctx, "bidi");
    uint64_t rng = static_cast<uint64_t>(MonotonicNs());
    EchoRequest req;
    bool endless = false;
    for (int i = 0; stream->Read(&req); ++i) {
      if (i == 0) endless = req.wait_for_cancel();
      Verify(req);
      EchoResponse resp;
      Fill(req, &rng, &resp);
      if (!stream->Write(resp)) return h.End(Status::OK, true);
    }
    return h.End(Status::OK, endless);
  }

  const bool report_handlers_;
  std::atomic<int> active_{0};
  std::atomic<int64_t> ended_{0};
  std::atomic<int64_t> corrupt_{0};
};

}  // namespace

// Flags: --address=shm:... [--max-streams=N] [--ring=BYTES]
//        [--report-handlers=0] (no HANDLER_START/END lines but for failures)
// Prints "READY" once serving.
int RunServer(int argc, char** argv) {
  grpc_shm::ShmOptions options;
  int64_t ring = IntFlag(argc, argv, "ring", 0);
  if (ring > 0) options.ring_bytes = static_cast<uint32_t>(ring);
  ReliabilityService service(IntFlag(argc, argv, "report-handlers", 1) != 0);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(Flag(argc, argv, "address", ""), grpc_shm::ServerCredentials(options));
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(128 << 20);
  builder.SetMaxSendMessageSize(128 << 20);
  int64_t max_streams = IntFlag(argc, argv, "max-streams", 0);
  if (max_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(max_streams));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    Say("FAILED to start");
    return 1;
  }
  Say("READY");
  ProcessUsage baseline;
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "baseline") {
      baseline = IdleBaseline(std::chrono::seconds(20));
      Say("BASELINE %s", Describe(baseline).c_str());
      std::fprintf(stderr, "baseline %s\n", DescribeHoldings().c_str());
    } else if (line.rfind("settle", 0) == 0) {
      auto timeout = std::chrono::milliseconds(std::stoll(line.substr(6)));
      auto give_up = std::chrono::steady_clock::now() + timeout;
      while (service.active() > 0 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      ProcessUsage now;
      bool ok = service.active() == 0 && WaitForBaseline(baseline, 0, timeout, &now);
      if (!ok) std::fprintf(stderr, "not back to baseline; %s\n", DescribeHoldings().c_str());
      struct mallinfo2 heap = mallinfo2();
      Say("SETTLED %s %s active_handlers=%d heap_in_use_kib=%zu", ok ? "OK" : "FAIL",
          Describe(now).c_str(), service.active(), (heap.uordblks + heap.hblkhd) / 1024);
    } else if (line == "stats") {
      Say("STATS handlers=%lld corrupt=%lld", static_cast<long long>(service.ended()),
          static_cast<long long>(service.corrupt()));
    } else if (line == "quit") {
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      Say("BYE");
      std::_Exit(0);
    }
  }
  // stdin closed: the driver is gone; do not linger.
  std::_Exit(0);
}

}  // namespace reliability
}  // namespace grpc_shm
