// The server half of the transport's end-to-end tests, run as its own
// process (flags: see main). Reads commands from stdin:
//   "shutdown <ms>"  Shutdown(deadline = now + ms), then exit 0
//   "fill-descriptors" / "free-descriptors"  open /dev/null until EMFILE /
//                    close those again; answer "FILLED <n>" / "FREED"
// and exits when stdin closes (the test process died).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"

namespace {

using grpc::ServerContext;
using grpc::Status;
using grpc_shm::test::EchoRequest;
using grpc_shm::test::EchoResponse;

int64_t RemainingMs(ServerContext* ctx) {
  auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::system_clock::now())
      .count();
}

// The sync API has no cancellation callback; a handler that must outlive
// the call's end checks for it.
// Prints "CANCELLED <message>" so a test can see the server noticed.
void WaitUntilCancelled(ServerContext* ctx, const std::string& message) {
  while (!ctx->IsCancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("CANCELLED %s\n", message.c_str());
  std::fflush(stdout);
}

// Echoes "x-*" request metadata back as initial and trailing metadata.
void EchoMetadata(ServerContext* ctx) {
  for (const auto& kv : ctx->client_metadata()) {
    std::string key(kv.first.data(), kv.first.size());
    if (key.rfind("x-", 0) != 0) continue;
    std::string value(kv.second.data(), kv.second.size());
    ctx->AddInitialMetadata(key, value);
    ctx->AddTrailingMetadata(key, value);
  }
}

void Fill(const EchoRequest& req, ServerContext* ctx, EchoResponse* resp) {
  resp->set_message(req.message());
  if (req.response_bytes() > 0) {
    resp->set_payload(std::string(static_cast<size_t>(req.response_bytes()), 'r'));
  } else {
    resp->set_payload(req.payload());
  }
  resp->set_deadline_remaining_ms(RemainingMs(ctx));
  resp->set_peer(ctx->peer());
}

class EchoService final : public grpc_shm::test::EchoTest::Service {
  Status Unary(ServerContext* ctx, const EchoRequest* req, EchoResponse* resp) override {
    EchoMetadata(ctx);
    if (req->wait_for_cancel()) {
      WaitUntilCancelled(ctx, req->message());
      return Status::CANCELLED;
    }
    if (req->status_code() != 0) {
      return Status(static_cast<grpc::StatusCode>(req->status_code()), req->status_message(),
                    "details-bytes");
    }
    Fill(*req, ctx, resp);
    return Status::OK;
  }

  Status ClientStream(ServerContext* ctx, grpc::ServerReader<EchoRequest>* reader,
                      EchoResponse* resp) override {
    EchoRequest req;
    int received = 0;
    std::string all;
    while (reader->Read(&req)) {
      // A status in a request ends the call at once, unread messages and all.
      if (req.status_code() != 0) {
        return Status(static_cast<grpc::StatusCode>(req.status_code()), req.status_message());
      }
      ++received;
      all += req.message();
      resp->set_payload(resp->payload() + req.payload());
    }
    resp->set_received(received);
    resp->set_message(all);
    return Status::OK;
  }

  Status ServerStream(ServerContext* ctx, const EchoRequest* req,
                      grpc::ServerWriter<EchoResponse>* writer) override {
    EchoMetadata(ctx);
    for (int i = 0; i < req->count(); ++i) {
      EchoResponse resp;
      Fill(*req, ctx, &resp);
      resp.set_message(req->message() + std::to_string(i));
      if (!writer->Write(resp)) return Status(grpc::StatusCode::ABORTED, "write failed");
      if (req->announce_writes()) {
        std::printf("WROTE %s %d\n", req->message().c_str(), i);
        std::fflush(stdout);
      }
    }
    if (req->wait_for_cancel()) {
      WaitUntilCancelled(ctx, req->message());
      return Status::CANCELLED;
    }
    if (req->status_code() != 0) {
      return Status(static_cast<grpc::StatusCode>(req->status_code()), req->status_message());
    }
    return Status::OK;
  }

  Status Bidi(ServerContext* ctx,
              grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest req;
    while (stream->Read(&req)) {
      EchoResponse resp;
      Fill(req, ctx, &resp);
      if (!stream->Write(resp)) break;
    }
    return Status::OK;
  }
};

}  // namespace

// Client mode, for tests that kill the client: opens a server-streaming
// call that the server keeps open, prints "READY 0" once the first response
// arrived (the call is then in flight on both sides), and waits to be killed.
int RunDoomedClient(const std::string& target, bool shm) {
  auto creds = shm ? grpc_shm::ChannelCredentials() : grpc::InsecureChannelCredentials();
  auto stub = grpc_shm::test::EchoTest::NewStub(grpc::CreateChannel(target, creds));
  grpc::ClientContext ctx;
  EchoRequest req;
  req.set_message("client-death");
  req.set_count(1);
  req.set_wait_for_cancel(true);
  auto reader = stub->ServerStream(&ctx, req);
  EchoResponse resp;
  if (!reader->Read(&resp)) return 1;
  std::printf("READY 0\n");
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  std::_Exit(0);
}

// Becomes user `uid_gid` ("UID:GID") for good, before anything listens, so
// the kernel reports that user as the server to connecting clients.
bool DropPrivileges(const std::string& uid_gid) {
  size_t colon = uid_gid.find(':');
  if (colon == std::string::npos) return false;
  auto uid = static_cast<uid_t>(std::stoul(uid_gid.substr(0, colon)));
  auto gid = static_cast<gid_t>(std::stoul(uid_gid.substr(colon + 1)));
  if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
    std::perror("dropping privileges");
    return false;
  }
  return getuid() == uid && geteuid() == uid;
}

// Lowers RLIMIT_NOFILE so that `headroom` more descriptors fit beside those
// open now (descriptors are numbered lowest-free first).
bool LimitDescriptors(int headroom) {
  int open_now = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++open_now;
  }
  ::closedir(dir);
  --open_now;  // the directory stream's own descriptor
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  limit.rlim_cur = static_cast<rlim_t>(open_now + headroom);
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

// Flags: --shm=ADDRESS [--ring=BYTES] [--spin-ns=NANOSECONDS] [--uds=PATH] [--tcp=PORT]
// [--deny-self]
//        [--max-pending-handshakes=N] [--handshake-timeout-ms=MS]
//        [--nofile-headroom=N] (RLIMIT_NOFILE: N descriptors beyond those open at start-up)
//        [--stderr=PATH] (gRPC's log)
//        [--run-as=UID:GID]
//        [--channel-arg=KEY=INT]... (e.g. grpc.max_concurrent_streams=8)
// Listens on every address given, at once (0 as TCP port picks one), and
// prints "READY <tcp port>" once serving.
// Or: --call=TARGET [--call-shm] for the client mode above.
int main(int argc, char** argv) {
  if (argc >= 2 && std::strncmp(argv[1], "--call=", 7) == 0) {
    return RunDoomedClient(argv[1] + 7, argc >= 3 && std::strcmp(argv[2], "--call-shm") == 0);
  }
  std::string shm_address, uds_path;
  int tcp_port = -1;
  int nofile_headroom = -1;
  grpc_shm::ShmOptions options;
  std::string run_as;
  std::vector<std::pair<std::string, int>> int_args;  // --channel-arg
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      size_t n = std::strlen(flag);
      return arg.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--shm=")) {
      shm_address = v;
    } else if (const char* v = value("--spin-ns=")) {
      options.spin_budget = std::chrono::nanoseconds(std::stoll(v));
    } else if (const char* v = value("--ring=")) {
      options.ring_bytes = static_cast<uint32_t>(std::stoul(v));
    } else if (const char* v = value("--uds=")) {
      uds_path = v;
    } else if (const char* v = value("--tcp=")) {
      tcp_port = std::atoi(v);
    } else if (const char* v = value("--run-as=")) {
      run_as = v;
    } else if (const char* v = value("--max-pending-handshakes=")) {
      options.max_pending_handshakes = std::atoi(v);
    } else if (const char* v = value("--handshake-timeout-ms=")) {
      options.handshake_timeout = std::chrono::milliseconds(std::atoi(v));
    } else if (const char* v = value("--nofile-headroom=")) {
      nofile_headroom = std::atoi(v);
    } else if (const char* v = value("--stderr=")) {
      // gRPC logs to stderr; tests read what the listener logged here.
      if (std::freopen(v, "w", stderr) == nullptr) return 2;
      std::setvbuf(stderr, nullptr, _IONBF, 0);  // readable while we run
    } else if (const char* v = value("--channel-arg=")) {
      // KEY=INT, given to the server as a channel argument (after the
      // defaults below, so it wins over them).
      std::string kv = v;
      size_t eq = kv.find('=');
      if (eq == std::string::npos) return 2;
      int_args.emplace_back(kv.substr(0, eq), std::atoi(kv.c_str() + eq + 1));
    } else if (arg == "--deny-self") {
      // Admit only a uid and gid that are not ours.
      options.allowed_uids = {getuid() + 4242};
      options.allowed_gids = {getgid() + 4242};
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (!run_as.empty() && !DropPrivileges(run_as)) {
    std::printf("FAILED\n");
    std::fflush(stdout);
    return 1;
  }
  EchoService service;
  grpc::ServerBuilder builder;
  if (!shm_address.empty()) {
    builder.AddListeningPort(shm_address, grpc_shm::ServerCredentials(options));
  }
  if (!uds_path.empty()) {
    builder.AddListeningPort("unix:" + uds_path, grpc::InsecureServerCredentials());
  }
  int selected_port = 0;
  if (tcp_port >= 0) {
    builder.AddListeningPort("127.0.0.1:" + std::to_string(tcp_port),
                             grpc::InsecureServerCredentials(), &selected_port);
  }
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(128 << 20);
  builder.SetMaxSendMessageSize(128 << 20);
  for (const auto& kv : int_args) {
    if (kv.first == GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH) {
      builder.SetMaxReceiveMessageSize(kv.second);
    } else {
      builder.AddChannelArgument(kv.first, kv.second);
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::printf("FAILED\n");
    std::fflush(stdout);
    return 1;
  }
  if (nofile_headroom >= 0 && !LimitDescriptors(nofile_headroom)) {
    std::printf("FAILED\n");
    std::fflush(stdout);
    return 1;
  }
  std::printf("READY %d\n", selected_port);
  std::fflush(stdout);
  std::string line;
  std::vector<int> filler;  // descriptors taken by "fill-descriptors"
  while (std::getline(std::cin, line)) {
    if (line.rfind("shutdown", 0) == 0) {
      int ms = std::atoi(line.c_str() + 8);
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
      server->Wait();
      std::printf("SHUTDOWN_DONE\n");
      std::fflush(stdout);
      return 0;
    }
    if (line == "fill-descriptors") {
      // Takes every descriptor the process may still open (see
      // --nofile-headroom), so the next accept fails with EMFILE.
      for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
      std::printf("FILLED %zu\n", filler.size());
      std::fflush(stdout);
    } else if (line == "free-descriptors") {
      for (int fd : filler) ::close(fd);
      filler.clear();
      std::printf("FREED\n");
      std::fflush(stdout);
    }
  }
  // stdin closed: the test process is gone; do not linger.
  std::_Exit(0);
}
