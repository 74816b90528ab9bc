// interop_server: gRPC's own interop TestService (unmodified, from the gRPC
// 1.51.1 source tree) on a ServerBuilder, listening over TCP, over grpc-shm,
// or over both at once.
//
//   interop_server --transport=tcp  --address=127.0.0.1:0 --ready_file=F
//   interop_server --transport=shm  --address=shm:///tmp/x/s.sock --ready_file=F
//   interop_server --transport=both --tcp_address=127.0.0.1:0
//                  --shm_address=shm:///tmp/x/s.sock --ready_file=F
//
// Once the server is serving, it writes the ready file (atomically, by
// rename) with lines "tcp_port=<port>" and/or "shm_address=<address>", so a
// runner can wait for it without fixed sleeps and learn the TCP port the
// kernel picked for port 0. SIGTERM or SIGINT shuts the server down cleanly
// (exit status 0).
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "interop_tests/test_service_factory.h"
#include "interop_tests/transport.h"

ABSL_FLAG(std::string, transport, "tcp", "tcp | shm | both");
ABSL_FLAG(std::string, address, "",
          "Listening address for --transport=tcp (host:port, port 0 picks a "
          "free one; default 127.0.0.1:0) or --transport=shm "
          "(shm:///abs/path)");
ABSL_FLAG(std::string, tcp_address, "127.0.0.1:0",
          "TCP listening address for --transport=both");
ABSL_FLAG(std::string, shm_address, "",
          "shm listening address for --transport=both");
ABSL_FLAG(std::string, ready_file, "",
          "If set, written once the server is serving: tcp_port=<port> and/or "
          "shm_address=<address>, one per line");

namespace {

bool WriteReadyFile(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << contents;
    out.flush();
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);

  // Block the shutdown signals in every thread (gRPC's threads inherit this
  // mask) and take them synchronously with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string transport = absl::GetFlag(FLAGS_transport);
  std::string tcp_address;
  std::string shm_address;
  if (transport == "tcp") {
    tcp_address = absl::GetFlag(FLAGS_address);
    if (tcp_address.empty()) tcp_address = "127.0.0.1:0";
  } else if (transport == "shm") {
    shm_address = absl::GetFlag(FLAGS_address);
  } else if (transport == "both") {
    tcp_address = absl::GetFlag(FLAGS_tcp_address);
    shm_address = absl::GetFlag(FLAGS_shm_address);
  } else {
    std::cerr << "interop_server: unknown --transport=" << transport
              << " (tcp | shm | both)\n";
    return 2;
  }
  const bool want_tcp = transport != "shm";
  const bool want_shm = transport != "tcp";
  if (want_shm && shm_address.empty()) {
    std::cerr << "interop_server: an shm address is required for --transport="
              << transport << "\n";
    return 2;
  }

  std::unique_ptr<grpc::Service> service = grpc_shm_interop::NewTestService();
  grpc::ServerBuilder builder;
  builder.RegisterService(service.get());
  int tcp_port = 0;
  if (want_tcp) {
    builder.AddListeningPort(tcp_address, grpc::InsecureServerCredentials(),
                             &tcp_port);
  }
  if (want_shm) {
    std::shared_ptr<grpc::ServerCredentials> creds =
        grpc_shm_interop::ShmServerCredentials();
    if (creds == nullptr) {
      std::cerr << "interop_server: built without the grpc-shm transport; "
                   "--transport="
                << transport << " is unavailable\n";
      return 2;
    }
    builder.AddListeningPort(shm_address, creds);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "interop_server: BuildAndStart failed\n";
    return 1;
  }
  if (want_tcp && tcp_port <= 0) {
    std::cerr << "interop_server: could not bind TCP " << tcp_address << "\n";
    return 1;
  }

  std::string ready;
  if (want_tcp) ready += "tcp_port=" + std::to_string(tcp_port) + "\n";
  if (want_shm) ready += "shm_address=" + shm_address + "\n";
  std::cout << "interop_server: serving TestService\n" << ready << std::flush;
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty() && !WriteReadyFile(ready_file, ready)) {
    std::cerr << "interop_server: cannot write " << ready_file << "\n";
    return 1;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "interop_server: signal " << sig << ", shutting down\n"
            << std::flush;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  std::cout << "interop_server: stopped\n" << std::flush;
  return 0;
}
