// The chaos driver: trial after trial, starts a server and a client (this
// binary in server and client mode), puts one scenario's calls in flight,
// kills the client or the server with SIGKILL after a random delay, and
// checks the survivor:
//   - every in-flight call ended with UNAVAILABLE or CANCELLED (client
//     survivor), or every handler saw its cancellation (server survivor),
//     within a generous deadline (a hang fails the trial, it does not
//     stall the run);
//   - its descriptors, memfd mappings, threads and RSS came back to what
//     it held before the trial's calls (measured by the survivor itself);
//   - nothing new in /dev/shm, nothing in the trial's directory but the
//     socket the server owns (gone after a graceful shutdown);
//   - a restarted server is reached again on the client's same channel, or
//     a surviving server serves a new client.
// Detection time: from just before kill() to the last call or handler that
// saw the failure, both read on CLOCK_MONOTONIC.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "reliability/child_process.h"
#include "reliability/peer_common.h"
#include "reliability/process_usage.h"

namespace grpc_shm {
namespace reliability {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const char* const kScenarios[] = {"handshake", "large", "stream", "paused", "queued"};
constexpr int kScenarioCount = 5;
constexpr int kMaxStreams = 4;
constexpr int kStatusCancelled = 1;
constexpr int kStatusUnavailable = 14;

struct Trial {
  int index = 0;
  uint64_t seed = 0;
  std::string mode;  // "default" or "thread" (GRPC_SHM_POLLER)
  bool kill_server = false;
  std::string scenario;
  int64_t delay_us = 0;
};

struct Outcome {
  bool ok = true;
  std::string failure;         // first failed check
  double detection_ms = -1;    // -1: nothing was in flight on the survivor
  std::map<int, int> codes;    // client survivor: status code -> calls
  int handlers_cancelled = 0;  // server survivor
};

// Deterministic from (run seed, trial index), so one trial replays alone.
Trial MakeTrial(uint64_t run_seed, int index, const std::vector<std::string>& modes,
                int64_t kill_window_us) {
  Trial t;
  t.index = index;
  std::seed_seq seq{static_cast<uint32_t>(run_seed), static_cast<uint32_t>(run_seed >> 32),
                    static_cast<uint32_t>(index)};
  std::mt19937_64 rng(seq);
  t.seed = rng();
  // Rotate through every combination so a few dozen trials cover them all.
  const int m = static_cast<int>(modes.size());
  t.mode = modes[static_cast<size_t>(index % m)];
  t.kill_server = (index / m) % 2 == 1;
  t.scenario = kScenarios[(index / (2 * m)) % kScenarioCount];
  // Handshakes are short: kill soon after the loop of connects starts.
  int64_t window = t.scenario == "handshake" ? kill_window_us / 4 : kill_window_us;
  t.delay_us = static_cast<int64_t>(rng() % static_cast<uint64_t>(window + 1));
  return t;
}

std::set<std::string> ListDir(const std::string& path) {
  std::set<std::string> names;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    closedir(dir);
  }
  return names;
}

std::string Join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

class TrialRunner {
 public:
  TrialRunner(std::string self, std::string log_dir, const Trial& trial)
      : self_(std::move(self)), trial_(trial) {
    char tmpl[] = "/tmp/grpc-shm-chaos.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    address_ = "shm://" + dir_ + "/s.sock";
    std::string prefix = log_dir + "/trial-" + std::to_string(trial.index);
    server_log_ = prefix + "-server.log";
    client_log_ = prefix + "-client.log";
    env_ = {trial.mode == "thread" ? "GRPC_SHM_POLLER=thread" : "GRPC_SHM_POLLER="};
  }

  ~TrialRunner() {
    server_.reset();
    client_.reset();
    if (!dir_.empty()) {
      for (const auto& n : ListDir(dir_)) unlink((dir_ + "/" + n).c_str());
      rmdir(dir_.c_str());
    }
  }

  Outcome Run() {
    Outcome out;
    Execute(&out);
    if (!out.ok) {
      out.ok = false;
    } else {
      unlink(server_log_.c_str());
      unlink(client_log_.c_str());
    }
    return out;
  }

 private:
  bool Fail(Outcome* out, const std::string& why) {
    if (out->ok) {
      out->ok = false;
      out->failure = why;
    }
    return false;
  }

  std::unique_ptr<ChildProcess> StartServer() {
    auto server = std::make_unique<ChildProcess>(
        std::vector<std::string>{self_, "server", "--address=" + address_,
                                 "--max-streams=" + std::to_string(kMaxStreams)},
        env_, server_log_);
    std::string line;
    if (!server->ReadUntil("READY", &line, seconds(60))) return nullptr;
    return server;
  }

  // Reads the server's lines until `want` handlers have started.
  bool AwaitHandlersStarted(int want, Outcome* out) {
    std::string line;
    while (started_ < want) {
      if (!server_->ReadLine(&line, seconds(60))) {
        return Fail(out, "server: only " + std::to_string(started_) + " of " +
                             std::to_string(want) + " handlers started");
      }
      Count(line);
    }
    return true;
  }

  void Count(const std::string& line) {
    auto w = Words(line);
    if (w.empty()) return;
    if (w[0] == "HANDLER_START") ++started_;
    if (w[0] == "HANDLER_END" && w.size() >= 4) {
      ++ended_;
      end_outcomes_.push_back(w[1] + ":" + w[2]);
      if (w[2] == "cancelled")
        last_cancel_ns_ = std::max(last_cancel_ns_, static_cast<int64_t>(std::stoll(w[3])));
      if (w[2] == "not-cancelled") not_cancelled_ = true;
    }
    if (w[0] == "CORRUPT") corrupt_ = true;
  }

  bool CheckFiles(Outcome* out, bool socket_expected) {
    std::set<std::string> now = ListDir(dir_);
    std::set<std::string> want;
    if (socket_expected) want.insert("s.sock");
    // A killed server leaves its socket file (nobody can remove it); the
    // next server replaces it.
    if (!socket_expected && trial_.kill_server && server_ == nullptr) now.erase("s.sock");
    if (now != want) return Fail(out, "trial directory holds " + Join(now));
    std::set<std::string> shm = ListDir("/dev/shm");
    std::set<std::string> added;
    std::set_difference(shm.begin(), shm.end(), shm_before_.begin(), shm_before_.end(),
                        std::inserter(added, added.end()));
    if (!added.empty()) return Fail(out, "new in /dev/shm: " + Join(added));
    return true;
  }

  bool Settle(ChildProcess* survivor, const char* who, Outcome* out) {
    survivor->Send("settle 20000");
    std::string line;
    if (!survivor->ReadUntil("SETTLED", &line, seconds(90))) {
      return Fail(out, std::string(who) + ": no answer to settle");
    }
    if (line.rfind("SETTLED OK", 0) != 0) {
      return Fail(out,
                  std::string(who) + " not back to baseline (" + baselines_[who] + "): " + line);
    }
    return true;
  }

  bool Execute(Outcome* out) {
    if (dir_.empty()) return Fail(out, "mkdtemp failed");
    shm_before_ = ListDir("/dev/shm");
    server_ = StartServer();
    if (server_ == nullptr) return Fail(out, "server did not start");
    client_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{self_, "client", "--address=" + address_,
                                 "--scenario=" + trial_.scenario,
                                 "--seed=" + std::to_string(trial_.seed & 0x7fffffffffffffff),
                                 "--max-streams=" + std::to_string(kMaxStreams)},
        env_, client_log_);
    std::string line;
    if (!client_->ReadUntil("BASELINE", &line, seconds(60))) {
      return Fail(out, "client: no warm-up call");
    }
    baselines_["client"] = line.substr(9);
    server_->Send("baseline");
    if (!server_->ReadUntil("BASELINE", &line, seconds(60))) {
      return Fail(out, "server: no baseline");
    }
    baselines_["server"] = line.substr(9);
    client_->Send("go");
    if (!client_->ReadUntil("INFLIGHT", &line, seconds(90))) {
      return Fail(out, "client: calls not in flight");
    }
    if (!AwaitHandlersStarted(std::stoi(line.substr(9)), out)) return false;

    std::this_thread::sleep_for(std::chrono::microseconds(trial_.delay_us));
    const int64_t killed_at = MonotonicNs();
    if (trial_.kill_server) {
      server_->Kill();
      server_.reset();
      return ClientSurvives(killed_at, out);
    }
    client_->Kill();
    client_.reset();
    return ServerSurvives(killed_at, out);
  }

  // The server was killed: every call ends, the client settles, and its
  // channel reaches a restarted server.
  bool ClientSurvives(int64_t killed_at, Outcome* out) {
    std::vector<std::string> lines;
    std::string line;
    if (!client_->ReadUntil("ALLDONE", &line, seconds(90), &lines)) {
      std::string ended;
      for (const auto& l : lines) ended += " [" + l + "]";
      return Fail(out, "client: calls hang after the server died; ended:" + ended);
    }
    int64_t last = 0;
    for (const auto& l : lines) {
      auto w = Words(l);
      if (w.size() < 4 || w[0] != "END") continue;
      int code = std::stoi(w[2]);
      out->codes[code]++;
      last = std::max(last, static_cast<int64_t>(std::stoll(w[3])));
      if (code != kStatusUnavailable && code != kStatusCancelled) {
        Fail(out, "client: call ended with status " + std::to_string(code) + ": " + l);
      }
    }
    if (!out->ok) return false;
    out->detection_ms = static_cast<double>(last - killed_at) / 1e6;
    if (!Settle(client_.get(), "client", out)) return false;
    if (!CheckFiles(out, /*socket_expected=*/false)) return false;
    server_ = StartServer();
    if (server_ == nullptr) return Fail(out, "restarted server did not start");
    client_->Send("reconnect");
    if (!client_->ReadUntil("RECONNECT", &line, seconds(90))) {
      return Fail(out, "client: no answer to reconnect");
    }
    if (line.rfind("RECONNECT 0", 0) != 0) {
      return Fail(out, "client: restarted server not reached: " + line);
    }
    client_->Send("quit");
    int status;
    if (!client_->Wait(seconds(30), &status)) return Fail(out, "client: did not exit");
    return Shutdown(out);
  }

  // The client was killed: every handler ends cancelled, the server
  // settles and serves a new client.
  bool ServerSurvives(int64_t killed_at, Outcome* out) {
    std::string line;
    while (ended_ < started_) {
      if (!server_->ReadLine(&line, seconds(120))) {
        return Fail(out, "server: " + std::to_string(started_ - ended_) +
                             " handlers did not end after the client died");
      }
      Count(line);
    }
    if (not_cancelled_) {
      std::string all;
      for (const auto& e : end_outcomes_) all += " " + e;
      return Fail(out, "server: a handler never saw its cancellation:" + all);
    }
    // The handshake scenario's calls end normally; every other handler
    // was meant to run until the client went away.
    if (trial_.scenario != "handshake") {
      for (const auto& e : end_outcomes_) {
        if (e.find(":cancelled") == std::string::npos) {
          return Fail(out, "server: handler ended without cancellation: " + e);
        }
      }
    }
    out->handlers_cancelled = 0;
    for (const auto& e : end_outcomes_) out->handlers_cancelled += e.find(":cancelled") != e.npos;
    if (last_cancel_ns_ > 0)
      out->detection_ms = static_cast<double>(last_cancel_ns_ - killed_at) / 1e6;
    if (!Settle(server_.get(), "server", out)) return false;
    if (!CheckFiles(out, /*socket_expected=*/true)) return false;
    ChildProcess probe({self_, "probe", "--address=" + address_}, env_, client_log_);
    if (!probe.ReadUntil("PROBE", &line, seconds(90))) return Fail(out, "probe: no answer");
    if (line.rfind("PROBE 0", 0) != 0) return Fail(out, "server unreachable afterwards: " + line);
    return Shutdown(out);
  }

  bool Shutdown(Outcome* out) {
    std::string line;
    server_->Send("quit");
    if (!server_->ReadUntil("BYE", &line, seconds(60))) return Fail(out, "server: no shutdown");
    int status;
    if (!server_->Wait(seconds(30), &status)) return Fail(out, "server: did not exit");
    server_.reset();
    if (corrupt_) return Fail(out, "server: corrupt message");
    std::set<std::string> left = ListDir(dir_);
    if (!left.empty()) return Fail(out, "after shutdown the trial directory holds " + Join(left));
    return true;
  }

  std::string self_;
  Trial trial_;
  std::string dir_, address_, server_log_, client_log_;
  std::vector<std::string> env_;
  std::set<std::string> shm_before_;
  std::map<std::string, std::string> baselines_;
  std::unique_ptr<ChildProcess> server_, client_;
  int started_ = 0, ended_ = 0;
  bool not_cancelled_ = false, corrupt_ = false;
  int64_t last_cancel_ns_ = 0;
  std::vector<std::string> end_outcomes_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace

// Flags: [--trials=N] [--seed=S] [--trial=K (run only trial K of seed S)]
//        [--modes=default,thread] [--log-dir=DIR] [--kill-window-us=N]
int RunChaos(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const int trials = static_cast<int>(IntFlag(argc, argv, "trials", 1000));
  uint64_t seed = static_cast<uint64_t>(IntFlag(argc, argv, "seed", 0));
  if (seed == 0) seed = static_cast<uint64_t>(std::random_device{}()) << 20 ^ getpid();
  const int only = static_cast<int>(IntFlag(argc, argv, "trial", -1));
  const int64_t window_us = IntFlag(argc, argv, "kill-window-us", 100000);
  std::vector<std::string> modes;
  {
    std::istringstream in(Flag(argc, argv, "modes", "default,thread"));
    for (std::string m; std::getline(in, m, ',');) modes.push_back(m);
  }
  std::string log_dir = Flag(argc, argv, "log-dir", "");
  if (log_dir.empty()) {
    char tmpl[] = "/tmp/grpc-shm-chaos-logs.XXXXXX";
    log_dir = mkdtemp(tmpl) != nullptr ? tmpl : "/tmp";
  }
  mkdir(log_dir.c_str(), 0700);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 2;
  self[n] = '\0';

  std::printf("chaos: seed %llu, %d trials, modes %s, logs of failed trials in %s\n",
              static_cast<unsigned long long>(seed), only >= 0 ? 1 : trials,
              Flag(argc, argv, "modes", "default,thread").c_str(), log_dir.c_str());
  std::fflush(stdout);
  // Detection times per (poller mode, survivor).
  std::map<std::string, std::vector<double>> detection;
  std::map<std::string, int> failures_by_check;
  std::map<int, int> codes;
  int passed = 0, failed = 0, handlers_cancelled = 0, no_calls = 0;
  const auto started = std::chrono::steady_clock::now();
  for (int i = only >= 0 ? only : 0; i < (only >= 0 ? only + 1 : trials); ++i) {
    Trial trial = MakeTrial(seed, i, modes, window_us);
    Outcome out = TrialRunner(self, log_dir, trial).Run();
    std::string key = trial.mode + (trial.kill_server ? " / server killed" : " / client killed");
    char head[256];
    std::snprintf(head, sizeof(head), "trial %4d  %-7s kill %-6s %-9s after %6.2f ms: ", i,
                  trial.mode.c_str(), trial.kill_server ? "server" : "client",
                  trial.scenario.c_str(), static_cast<double>(trial.delay_us) / 1000.0);
    if (out.ok) {
      ++passed;
      if (out.detection_ms >= 0) {
        detection[key].push_back(out.detection_ms);
      } else {
        ++no_calls;
      }
      for (const auto& kv : out.codes) codes[kv.first] += kv.second;
      handlers_cancelled += out.handlers_cancelled;
      std::printf("%sok", head);
      if (out.detection_ms >= 0) std::printf(", detected in %.2f ms", out.detection_ms);
      std::printf("\n");
    } else {
      ++failed;
      failures_by_check[out.failure.substr(0, out.failure.find(':'))]++;
      std::printf(
          "%sFAILED: %s\n    replay: scripts/chaos.sh --seed=%llu --trial=%d "
          "(logs: %s/trial-%d-*.log)\n",
          head, out.failure.c_str(), static_cast<unsigned long long>(seed), i, log_dir.c_str(), i);
    }
    std::fflush(stdout);
  }
  const double minutes =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60;
  std::printf("\nchaos summary (seed %llu): %d trials in %.1f min, %d passed, %d failed\n",
              static_cast<unsigned long long>(seed), passed + failed, minutes, passed, failed);
  std::printf(
      "  client calls ended: %d UNAVAILABLE, %d CANCELLED; server handlers that saw "
      "cancellation: %d; trials with nothing in flight on the survivor: %d\n",
      codes[kStatusUnavailable], codes[kStatusCancelled], handlers_cancelled, no_calls);
  std::printf(
      "  detection time, kill -9 to the survivor's last failed call or cancelled "
      "handler:\n");
  std::printf("    %-34s %6s %9s %9s %9s\n", "poller / victim", "trials", "p50 ms", "p99 ms",
              "max ms");
  for (const auto& kv : detection) {
    std::printf("    %-34s %6zu %9.2f %9.2f %9.2f\n", kv.first.c_str(), kv.second.size(),
                Percentile(kv.second, 0.5), Percentile(kv.second, 0.99),
                Percentile(kv.second, 1.0));
  }
  for (const auto& kv : failures_by_check) {
    std::printf("  failed check \"%s\": %d\n", kv.first.c_str(), kv.second);
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace reliability
}  // namespace grpc_shm
