// The IPC core on its own, no gRPC: a server process echoes frames back, a
// client process measures round trips through the shared-memory rings.
//
//   ipc_ping_pong server /tmp/pp.sock        (runs until the client hangs up)
//   ipc_ping_pong client /tmp/pp.sock [round_trips]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "plugin/ipc/connection.h"

using grpc_shm::ipc::Connection;
using grpc_shm::ipc::ConnectionOptions;
using grpc_shm::ipc::FrameHeader;
using grpc_shm::ipc::FrameView;
using grpc_shm::ipc::Status;
using grpc_shm::ipc::StatusCode;
using Clock = std::chrono::steady_clock;

namespace {

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return 1;
}

// Echoes every frame on every connection until that client hangs up; one
// client at a time is all a demo needs.
int RunServer(const std::string& address) {
  std::unique_ptr<grpc_shm::ipc::Listener> listener;
  Status s = grpc_shm::ipc::Listener::Listen(address, {}, &listener);
  if (!s.ok()) return Fail("listen", s);
  std::printf("ipc server listening on %s\n", address.c_str());
  std::fflush(stdout);
  std::vector<uint8_t> buf;
  for (int clients = 0; clients < 2; ++clients) {
    std::unique_ptr<Connection> c;
    s = listener->Accept(&c);
    if (!s.ok()) return Fail("accept", s);
    for (;;) {
      FrameView f;
      s = c->ReadFrame(&f);
      if (s.code() == StatusCode::kPeerClosed) break;
      if (!s.ok()) return Fail("read", s);
      buf.resize(f.payload_size());
      f.CopyPayloadTo(buf.data());
      FrameHeader h = f.header;
      c->Consume();
      grpc_shm::ipc::ConstByteSpan part{buf.data(), buf.size()};
      s = c->WriteFrame(h, &part, 1);
      if (!s.ok()) return Fail("write", s);
    }
  }
  return 0;
}

double Percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

int Measure(const std::string& address, const char* label, ConnectionOptions options, int n) {
  std::unique_ptr<Connection> c;
  Status s = grpc_shm::ipc::Connect(address, options, &c);
  if (!s.ok()) return Fail("connect", s);
  std::vector<uint8_t> payload(64, 0x5a);
  std::vector<double> us;
  us.reserve(n);
  for (int i = -n / 10; i < n; ++i) {  // the first tenth warms up
    const auto start = Clock::now();
    FrameHeader h{};
    h.stream_id = static_cast<uint32_t>(i);
    grpc_shm::ipc::ConstByteSpan part{payload.data(), payload.size()};
    s = c->WriteFrame(h, &part, 1);
    if (!s.ok()) return Fail("write", s);
    FrameView f;
    s = c->ReadFrame(&f);
    if (!s.ok()) return Fail("read", s);
    if (f.header.stream_id != static_cast<uint32_t>(i)) {
      std::fprintf(stderr, "echo out of order\n");
      return 1;
    }
    c->Consume();
    if (i >= 0)
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::printf("  %-28s p50 %6.2f us   p99 %6.2f us   (%d round trips of 64 B)\n", label,
              Percentile(us, 0.5), Percentile(us, 0.99), n);
  return 0;
}

int RunClient(const std::string& address, int n) {
  std::printf("round trips through the shared-memory rings (client pid %d):\n", getpid());
  ConnectionOptions sleeping = grpc_shm::ipc::DefaultConnectionOptions();
  if (int rc = Measure(address, "socket doorbell (no spin)", sleeping, n)) return rc;
  ConnectionOptions spinning = sleeping;
  spinning.spin = std::chrono::milliseconds(10);
  return Measure(address, "client spins 10 ms first", spinning, n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "server") == 0) return RunServer(argv[2]);
  if (argc >= 3 && std::strcmp(argv[1], "client") == 0) {
    return RunClient(argv[2], argc >= 4 ? std::atoi(argv[3]) : 20000);
  }
  std::fprintf(stderr, "usage: %s server ADDRESS | client ADDRESS [round_trips]\n", argv[0]);
  return 2;
}
