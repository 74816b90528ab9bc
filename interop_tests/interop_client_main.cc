// interop_client: gRPC's own interop client (grpc::testing::InteropClient,
// unmodified, from the gRPC 1.51.1 source tree) over TCP or grpc-shm.
//
//   interop_client --transport=tcp --address=127.0.0.1:PORT --test_case=CASE
//   interop_client --transport=shm --address=shm:///tmp/x/s.sock --test_case=CASE
//
// InteropClient aborts the process on a failed check, so run one process per
// case (that is what the ctest entries do). --test_case also accepts a
// comma-separated list, run in order (used by the mixed-server test).
#include <grpcpp/channel.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "interop_tests/transport.h"
#include "test/cpp/interop/interop_client.h"

ABSL_FLAG(std::string, transport, "tcp", "tcp | shm");
ABSL_FLAG(std::string, address, "",
          "Server address: host:port for tcp, shm:///abs/path for shm");
ABSL_FLAG(std::string, test_case, "",
          "Interop case to run, or a comma-separated list of cases");
// Soak defaults are modest, for CI on a small shared machine.
ABSL_FLAG(int32_t, soak_iterations, 50,
          "Iterations of rpc_soak and channel_soak");
ABSL_FLAG(int32_t, soak_max_failures, 0,
          "Soak iterations allowed to fail (or be too slow)");
ABSL_FLAG(int32_t, soak_per_iteration_max_acceptable_latency_ms, 2000,
          "A soak iteration slower than this counts as a failure");
ABSL_FLAG(int32_t, soak_overall_timeout_seconds, 60,
          "Overall limit of one soak case");
ABSL_FLAG(int32_t, soak_min_time_ms_between_rpcs, 0,
          "Minimum time between soak iterations");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);

  const std::string transport = absl::GetFlag(FLAGS_transport);
  const std::string address = absl::GetFlag(FLAGS_address);
  if (address.empty()) {
    std::cerr << "interop_client: --address is required\n";
    return 2;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (transport == "tcp") {
    creds = grpc::InsecureChannelCredentials();
  } else if (transport == "shm") {
    creds = grpc_shm_interop::ShmChannelCredentials();
    if (creds == nullptr) {
      std::cerr << "interop_client: built without the grpc-shm transport\n";
      return 2;
    }
  } else {
    std::cerr << "interop_client: unknown --transport=" << transport
              << " (tcp | shm)\n";
    return 2;
  }

  grpc::testing::ChannelCreationFunc channel_creation_func = [address,
                                                              creds]() {
    return grpc::CreateCustomChannel(address, creds, grpc::ChannelArguments());
  };
  // new_stub_every_test_case = true, do_not_abort_on_transient_failures =
  // false: as gRPC's own interop client runs it.
  grpc::testing::InteropClient client(channel_creation_func, true, false);

  const int32_t soak_iterations = absl::GetFlag(FLAGS_soak_iterations);
  const int32_t soak_max_failures = absl::GetFlag(FLAGS_soak_max_failures);
  const int32_t soak_latency_ms =
      absl::GetFlag(FLAGS_soak_per_iteration_max_acceptable_latency_ms);
  const int32_t soak_gap_ms = absl::GetFlag(FLAGS_soak_min_time_ms_between_rpcs);
  const int32_t soak_timeout_s =
      absl::GetFlag(FLAGS_soak_overall_timeout_seconds);

  using grpc::testing::InteropClient;
  std::map<std::string, std::function<bool()>> actions = {
      {"empty_unary", [&] { return client.DoEmpty(); }},
      {"large_unary", [&] { return client.DoLargeUnary(); }},
      {"client_compressed_unary",
       [&] { return client.DoClientCompressedUnary(); }},
      {"server_compressed_unary",
       [&] { return client.DoServerCompressedUnary(); }},
      {"client_streaming", [&] { return client.DoRequestStreaming(); }},
      {"server_streaming", [&] { return client.DoResponseStreaming(); }},
      {"client_compressed_streaming",
       [&] { return client.DoClientCompressedStreaming(); }},
      {"server_compressed_streaming",
       [&] { return client.DoServerCompressedStreaming(); }},
      {"slow_consumer",
       [&] { return client.DoResponseStreamingWithSlowConsumer(); }},
      {"half_duplex", [&] { return client.DoHalfDuplex(); }},
      {"ping_pong", [&] { return client.DoPingPong(); }},
      {"empty_stream", [&] { return client.DoEmptyStream(); }},
      {"cancel_after_begin", [&] { return client.DoCancelAfterBegin(); }},
      {"cancel_after_first_response",
       [&] { return client.DoCancelAfterFirstResponse(); }},
      {"timeout_on_sleeping_server",
       [&] { return client.DoTimeoutOnSleepingServer(); }},
      {"custom_metadata", [&] { return client.DoCustomMetadata(); }},
      {"status_code_and_message",
       [&] { return client.DoStatusWithMessage(); }},
      {"special_status_message",
       [&] { return client.DoSpecialStatusMessage(); }},
      {"unimplemented_method", [&] { return client.DoUnimplementedMethod(); }},
      {"unimplemented_service",
       [&] { return client.DoUnimplementedService(); }},
      {"channel_soak",
       [&] {
         return client.DoChannelSoakTest(soak_iterations, soak_max_failures,
                                         soak_latency_ms, soak_gap_ms,
                                         soak_timeout_s);
       }},
      {"rpc_soak",
       [&] {
         return client.DoRpcSoakTest(soak_iterations, soak_max_failures,
                                     soak_latency_ms, soak_gap_ms,
                                     soak_timeout_s);
       }},
  };

  std::vector<std::string> cases =
      absl::StrSplit(absl::GetFlag(FLAGS_test_case), ',', absl::SkipEmpty());
  if (cases.empty()) {
    std::cerr << "interop_client: --test_case is required\n";
    return 2;
  }
  for (const std::string& name : cases) {
    if (actions.find(name) == actions.end()) {
      std::cerr << "interop_client: unknown test case '" << name
                << "'. Valid cases:\n";
      for (const auto& entry : actions) std::cerr << "  " << entry.first << "\n";
      return 2;
    }
  }
  int failures = 0;
  for (const std::string& name : cases) {
    std::cout << "interop_client: [" << transport << "] running " << name
              << "\n"
              << std::flush;
    const bool ok = actions[name]();
    std::cout << "interop_client: [" << transport << "] " << name << " "
              << (ok ? "PASSED" : "FAILED") << "\n"
              << std::flush;
    if (!ok) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
