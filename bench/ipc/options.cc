#include "bench/ipc/options.h"

#include <cstdio>
#include <cstdlib>

#include "plugin/ipc/connection.h"

namespace grpc_shm::bench {

namespace {

void PrintUsage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--json FILE] [--ring-bytes N] [--no-pin] [--rounds N]\n"
               "          [--only KEY,KEY...]\n"
               "  --quick        smoke run (< 20 s), fewer iterations\n"
               "  --json FILE    also write all figures as JSON\n"
               "  --ring-bytes N bytes per ring direction (default %u)\n"
               "  --no-pin       do not pin the two processes to different CPUs\n"
               "  --rounds N     interleaved latency rounds (default 4, quick 2)\n"
               "  --only KEYS    run only these latency scenarios (e.g. raw_spin,ring_spin;\n"
               "                 'paired' for the paired spinning blocks, 'throughput' for\n"
               "                 the one-way runs), print them, stop\n",
               argv0, ipc::kDefaultRingBytes);
}

// A smoke run for CI (< 20 s): every scenario, far fewer samples.
void ShrinkForQuickRun(Options* o) {
  o->rt_iters = 20000;
  o->rt_warmup = 2000;
  o->rt_rounds = 2;
  o->rt_warm_budget_ns = 50000000;
  o->rt_budget_ns = 300000000;
  o->tp_msgs = 2000000;
  o->tp_warmup = 100000;
  o->big_bytes = 512ull << 20;
  o->big_warmup_bytes = 32ull << 20;
  o->memcpy_bytes = 512ull << 20;
  o->scenario_timeout_s = 30;
  o->tp_rep_budget_s = 0.12;
  o->paired_blocks = 20;
  o->paired_per_block = 250;
  o->tp_rounds = 1;
}

}  // namespace

bool Options::OnlyHas(const std::string& key) const {
  return ("," + only + ",").find("," + key + ",") != std::string::npos;
}

int ParseOptions(int argc, char** argv, Options* options) {
  options->ring_bytes = ipc::kDefaultRingBytes;
  long rounds_arg = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      options->quick = true;
    } else if (a == "--no-pin") {
      options->pin = false;
    } else if (a == "--json" && i + 1 < argc) {
      options->json_path = argv[++i];
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds_arg = std::strtol(argv[++i], nullptr, 0);
    } else if (a == "--only" && i + 1 < argc) {
      options->only = argv[++i];
    } else if (a == "--ring-bytes" && i + 1 < argc) {
      options->ring_bytes = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 0));
    } else {
      PrintUsage(argv[0]);
      return a == "--help" || a == "-h" ? 0 : 1;
    }
  }
  if (options->quick) ShrinkForQuickRun(options);
  // After --quick, whatever the order on the command line.
  if (rounds_arg > 0) options->rt_rounds = rounds_arg;
  return -1;
}

}  // namespace grpc_shm::bench
