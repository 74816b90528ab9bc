#include "reliability/process_usage.h"

#include <dirent.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace grpc_shm {
namespace reliability {

ProcessUsage UsageOf(pid_t pid) {
  ProcessUsage usage;
  const std::string proc = pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid);
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    if (key == "VmRSS:") in >> usage.rss_kib;
    if (key == "Threads:") in >> usage.threads;
  }
  std::string process_name;
  std::getline(std::ifstream(proc + "/comm"), process_name);
  if (DIR* dir = opendir((proc + "/task").c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::string name;
      std::getline(std::ifstream(proc + "/task/" + e->d_name + "/comm"), name);
      if (name == process_name) ++usage.unnamed_threads;
    }
    closedir(dir);
  }
  if (DIR* dir = opendir((proc + "/fd").c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++usage.descriptors;
    }
    closedir(dir);
    if (pid == 0) --usage.descriptors;  // the directory stream's own
  }
  std::ifstream maps(proc + "/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/memfd:") != std::string::npos) ++usage.memfd_mappings;
  }
  return usage;
}

std::string Describe(const ProcessUsage& usage) {
  std::ostringstream out;
  out << "rss_kib=" << usage.rss_kib << " fds=" << usage.descriptors << " threads=" << usage.threads
      << " (unnamed " << usage.unnamed_threads << ") memfd_maps=" << usage.memfd_mappings;
  return out.str();
}

bool HasThreadNamed(const std::string& name) {
  bool found = false;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::string comm;
      std::getline(std::ifstream(std::string("/proc/self/task/") + e->d_name + "/comm"), comm);
      found = found || comm == name;
    }
    closedir(dir);
  }
  return found;
}

std::string DescribeHoldings() {
  std::string out = "threads:";
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      out += " " + name;
    }
    closedir(dir);
  }
  out += "; fds:";
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      char target[256];
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      out += " " + std::string(e->d_name) + "=" + (n > 0 ? std::string(target, n) : "?");
    }
    closedir(dir);
  }
  return out;
}

bool BackToBaseline(const ProcessUsage& now, const ProcessUsage& baseline, int unnamed_growth) {
  return now.descriptors <= baseline.descriptors && now.memfd_mappings <= baseline.memfd_mappings &&
         now.threads - now.unnamed_threads <=
             baseline.threads - baseline.unnamed_threads + kGrpcPoolGrowth &&
         now.unnamed_threads <= baseline.unnamed_threads + unnamed_growth &&
         now.rss_kib <= baseline.rss_kib + kRssSlackKib;
}

bool WaitForBaseline(const ProcessUsage& baseline, int unnamed_growth,
                     std::chrono::milliseconds timeout, ProcessUsage* last) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    malloc_trim(0);
    *last = UsageOf(0);
    if (BackToBaseline(*last, baseline, unnamed_growth)) return true;
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ProcessUsage IdleBaseline(std::chrono::milliseconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  ProcessUsage usage = UsageOf(0);
  while (usage.memfd_mappings > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    usage = UsageOf(0);
  }
  malloc_trim(0);
  return UsageOf(0);
}

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace reliability
}  // namespace grpc_shm
