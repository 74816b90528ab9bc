// The transport's inbound path, the one a hostile client reaches first: a
// real gRPC server (echo service, grpc_shm::ServerCredentials) runs in this
// process, and each input becomes one connection from a fake peer (RawPeer,
// plugin/transport/tests/raw_peer.h) that reads the server's settings frame
// and then writes frames decoded from the input.
//
// The decoder is structure-aware: each frame is {type, stream id, flags,
// aux, payload}, with types, ids and flags drawn mostly from the values the
// server acts on, and payloads that are mostly well-formed (metadata blocks
// that open a call on one of the echo methods with plausible and hostile
// headers, serialized EchoRequests), so inputs get past the first check and
// into stream state, flow control, limits and gRPC's call handling. The
// server's answers are drained as they come. A ping at the end waits until
// the server has handled every frame (or hung up), then the peer hangs up.
//
// Invariants: no sanitizer report or crash in the server; it answers the
// closing ping or hangs up, and an honest client's call (every 64 inputs and
// the first) still succeeds: one hostile connection costs only itself.
#include <fuzzer/FuzzedDataProvider.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "fuzz/fuzz_check.h"
#include "grpc_shm/grpc_shm.h"
#include "plugin/ipc/frame_format.h"
#include "raw_peer.h"

namespace {

namespace ipc = grpc_shm::ipc;
using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;
using grpc_shm::testing::MetadataBlock;
using grpc_shm::testing::RawPeer;

// Bounded versions of the echo test service: whatever a request asks, the
// service's own cost stays small, so all the fuzzer measures is the transport.
class EchoService final : public grpc_shm::test::EchoTest::Service {
  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* req, EchoResponse* resp) override {
    if (req->status_code() > 0 && req->status_code() < 17) {
      return grpc::Status(static_cast<grpc::StatusCode>(req->status_code()),
                          req->status_message().substr(0, 256));
    }
    resp->set_message(req->message());
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }
  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<EchoRequest>* reader,
                            EchoResponse* resp) override {
    EchoRequest req;
    int received = 0;
    while (reader->Read(&req)) ++received;
    resp->set_received(received);
    return grpc::Status::OK;
  }
  grpc::Status ServerStream(grpc::ServerContext*, const EchoRequest* req,
                            grpc::ServerWriter<EchoResponse>* writer) override {
    EchoResponse resp;
    resp.set_message(req->message());
    for (int i = 0; i < std::min(req->count(), 3); ++i) {
      if (!writer->Write(resp)) break;
    }
    return grpc::Status::OK;
  }
  grpc::Status Bidi(grpc::ServerContext*,
                    grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest req;
    EchoResponse resp;
    while (stream->Read(&req)) {
      resp.set_message(req.message());
      if (!stream->Write(resp)) break;
    }
    return grpc::Status::OK;
  }
};

struct Server {
  std::string ipc_address;
  EchoService service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc_shm::test::EchoTest::Stub> honest;
};

Server& TheServer() {
  static Server* s = [] {
    auto* server = new Server();
    server->ipc_address = "@grpc-shm-fuzz-" + std::to_string(getpid());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("shm:" + server->ipc_address, grpc_shm::ServerCredentials());
    builder.RegisterService(&server->service);
    server->server = builder.BuildAndStart();
    FUZZ_CHECK(server->server != nullptr, "server did not start");
    server->honest = grpc_shm::test::EchoTest::NewStub(
        grpc::CreateChannel("shm:" + server->ipc_address, grpc_shm::ChannelCredentials()));
    return server;
  }();
  return *s;
}

void HonestCall() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EchoRequest req;
  req.set_message("still serving");
  EchoResponse resp;
  grpc::Status status = TheServer().honest->Unary(&context, req, &resp);
  FUZZ_CHECK(status.ok() && resp.message() == "still serving",
             "an honest call failed after hostile connections: %d %s",
             static_cast<int>(status.error_code()), status.error_message().c_str());
}

const char* const kMethods[] = {
    "/grpc_shm.test.EchoTest/Unary",        "/grpc_shm.test.EchoTest/ClientStream",
    "/grpc_shm.test.EchoTest/ServerStream", "/grpc_shm.test.EchoTest/Bidi",
    "/grpc_shm.test.EchoTest/Nope",         "/nope",
};

class Peer {
 public:
  Peer(FuzzedDataProvider* in, RawPeer* peer) : in_(*in), peer_(*peer) {}

  void Run() {
    for (int frames = 0; in_.remaining_bytes() > 0 && frames < 64 && alive_; ++frames) {
      SendOneFrame();
      DrainAnswers();
    }
    if (!alive_) return;
    // Barrier: answered only after every earlier frame was handled.
    constexpr uint32_t kBarrier = 0xfa22ba11;
    if (!Send(ipc::kFramePing, 0, 0, kBarrier, {})) return;
    RawPeer::Frame frame;
    ipc::Status s = peer_.ReadUntil(ipc::kFramePingAck, 0, &frame, std::chrono::milliseconds(2000));
    while (s.ok() && frame.header.aux != kBarrier) {
      s = peer_.ReadUntil(ipc::kFramePingAck, 0, &frame, std::chrono::milliseconds(2000));
    }
    if (!s.ok() && s.code() != ipc::StatusCode::kPeerClosed) {
      // Reading may be paused (a full ring, or gRPC yet to take what was
      // sent): not a finding by itself; the honest call decides.
      std::fprintf(stderr, "transport fuzzer: no answer to the closing ping: %s\n",
                   s.ToString().c_str());
    }
  }

 private:
  uint32_t StreamId() {
    switch (in_.ConsumeIntegralInRange(0, 9)) {
      case 0:
        return 0;
      case 1:
        return in_.ConsumeIntegral<uint32_t>();
      case 2:
      case 3:
        next_stream_ += 2;
        return next_stream_;
      default:
        return 1 + 2 * in_.ConsumeIntegralInRange<uint32_t>(0, 3);
    }
  }

  uint32_t Aux() {
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
        return 0;
      case 1:
        return in_.ConsumeIntegral<uint32_t>();
      default:
        return in_.ConsumeIntegralInRange<uint32_t>(0, 1 << 16);
    }
  }

  std::string Metadata(bool initial) {
    std::vector<std::pair<std::string, std::string>> entries;
    if (initial && in_.ConsumeIntegralInRange(0, 7) != 0) {
      entries.emplace_back(":path", kMethods[in_.ConsumeIntegralInRange<size_t>(0, 5)]);
      entries.emplace_back(":authority", "localhost");
      entries.emplace_back("content-type", "application/grpc");
      entries.emplace_back("te", "trailers");
    }
    for (int n = in_.ConsumeIntegralInRange(0, 4); n > 0; --n) {
      switch (in_.ConsumeIntegralInRange(0, 9)) {
        case 0:
          entries.emplace_back("grpc-timeout", in_.ConsumeRandomLengthString(12));
          break;
        case 1:
          entries.emplace_back("grpc-encoding", in_.ConsumeBool() ? "gzip" : "identity");
          break;
        case 2:
          entries.emplace_back("grpc-status", std::to_string(in_.ConsumeIntegral<int8_t>()));
          break;
        case 3:
          entries.emplace_back("grpc-message", in_.ConsumeRandomLengthString(64));
          break;
        case 4:
          entries.emplace_back("x-trace-bin", in_.ConsumeRandomLengthString(64));
          break;
        case 5:
          // Large values: the metadata size limit (8 KiB) and beyond.
          entries.emplace_back("x-big", std::string(in_.ConsumeIntegralInRange(0, 20000), 'v'));
          break;
        case 6:
          entries.emplace_back(":path", kMethods[in_.ConsumeIntegralInRange<size_t>(0, 5)]);
          break;
        default:
          entries.emplace_back(in_.ConsumeRandomLengthString(16),
                               in_.ConsumeRandomLengthString(32));
          break;
      }
    }
    return MetadataBlock(entries);
  }

  // proto3 strings must be UTF-8 (protobuf logs every one that is not).
  std::string Text(size_t max) {
    std::string s = in_.ConsumeRandomLengthString(max);
    for (char& c : s) c = static_cast<char>(' ' + (static_cast<unsigned char>(c) % 95));
    return s;
  }

  std::string Message() {
    EchoRequest req;
    req.set_message(Text(32));
    if (in_.ConsumeBool()) req.set_count(in_.ConsumeIntegralInRange(0, 5));
    if (in_.ConsumeIntegralInRange(0, 3) == 0) {
      req.set_status_code(in_.ConsumeIntegralInRange(0, 17));
      req.set_status_message(Text(16));
    }
    return req.SerializeAsString();
  }

  std::string Payload(uint8_t type) {
    switch (in_.ConsumeIntegralInRange(0, 9)) {
      case 0:
        return {};
      case 1:
        return in_.ConsumeRandomLengthString(128);
      case 2:
        // Up to the largest frame: message and buffer limits.
        return std::string(in_.ConsumeIntegralInRange<size_t>(0, (1 << 20) - 64), 'z');
      default:
        if (type == ipc::kFrameInitialMetadata) return Metadata(true);
        if (type == ipc::kFrameTrailingMetadata) return Metadata(false);
        if (type == ipc::kFrameMessage) return Message();
        if (type == ipc::kFrameReset) return in_.ConsumeRandomLengthString(32);
        return {};
    }
  }

  uint8_t Type() {
    switch (in_.ConsumeIntegralInRange(0, 15)) {
      case 0:
      case 1:
      case 2:
        return ipc::kFrameInitialMetadata;
      case 3:
      case 4:
      case 5:
      case 6:
        return ipc::kFrameMessage;
      case 7:
      case 8:
        return ipc::kFrameTrailingMetadata;
      case 9:
        return ipc::kFrameReset;
      case 10:
        return ipc::kFrameWindowUpdate;
      case 11:
        return ipc::kFramePing;
      case 12:
        return ipc::kFrameGoaway;
      case 13:
        return ipc::kFramePingAck;
      case 14:
        return ipc::kFrameSettings;
      default:
        return in_.ConsumeIntegral<uint8_t>();
    }
  }

  uint8_t Flags() {
    switch (in_.ConsumeIntegralInRange(0, 5)) {
      case 0:
        return ipc::kFlagEndOfStream;
      case 1:
        return ipc::kFlagMoreChunks;
      case 2:
        return in_.ConsumeIntegral<uint8_t>();
      default:
        return 0;
    }
  }

  void SendOneFrame() {
    const uint8_t type = Type();
    const uint32_t stream_id = StreamId();
    const uint8_t flags = Flags();
    const uint32_t aux = Aux();
    const std::string payload = Payload(type);
    Send(type, stream_id, flags, aux, payload);
  }

  bool Send(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
            const std::string& payload) {
    ipc::Status s = peer_.TrySend(type, stream_id, flags, aux, payload);
    if (s.code() == ipc::StatusCode::kWouldBlock) {
      DrainAnswers();
      s = peer_.Send(type, stream_id, flags, aux, payload, std::chrono::milliseconds(200));
    }
    if (!s.ok()) alive_ = false;  // a full ring the server no longer reads, or it hung up
    return s.ok();
  }

  void DrainAnswers() {
    ipc::FrameView frame;
    ipc::Status s;
    while ((s = peer_.connection().Peek(&frame)).ok()) peer_.connection().Consume();
    if (s.code() != ipc::StatusCode::kWouldBlock || !peer_.connection().CheckAlive().ok()) {
      alive_ = false;
    }
  }

  FuzzedDataProvider& in_;
  RawPeer& peer_;
  uint32_t next_stream_ = 7;
  bool alive_ = true;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Every hostile input makes the server log why it closed the connection.
  if (std::getenv("GRPC_SHM_FUZZ_VERBOSE") == nullptr) setenv("GRPC_VERBOSITY", "NONE", 1);
  TheServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t inputs = 0;
  if (inputs++ % 64 == 0) HonestCall();
  ipc::Status status;
  std::unique_ptr<RawPeer> peer = RawPeer::Connect(TheServer().ipc_address, &status);
  FUZZ_CHECK(peer != nullptr, "cannot connect to the server: %s", status.ToString().c_str());
  FuzzedDataProvider in(data, size);
  Peer(&in, peer.get()).Run();
  return 0;
}
