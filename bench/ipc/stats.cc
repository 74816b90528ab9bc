#include "bench/ipc/stats.h"

#include <algorithm>

namespace grpc_shm::bench {

LatencyStats Summarize(Samples v) {
  LatencyStats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (uint64_t x : v) sum += static_cast<double>(x);
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return static_cast<double>(v[std::min(i, v.size() - 1)]);
  };
  s.samples = static_cast<long>(v.size());
  s.mean_ns = sum / static_cast<double>(v.size());
  s.p50_ns = pct(0.50);
  s.p99_ns = pct(0.99);
  s.p999_ns = pct(0.999);
  s.min_ns = static_cast<double>(v.front());
  s.max_ns = static_cast<double>(v.back());
  return s;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Quartiles(std::vector<double> v, double* q1, double* q2, double* q3) {
  std::sort(v.begin(), v.end());
  *q1 = v[v.size() / 4];
  *q2 = v[v.size() / 2];
  *q3 = v[v.size() * 3 / 4];
}

void FillRates(const std::vector<double>& rates, size_t size, Throughput* t) {
  t->rates = rates;
  t->size = size;
  t->best_msgs_per_s = *std::max_element(rates.begin(), rates.end());
  t->median_msgs_per_s = Median(rates);
  t->best_gb_per_s = t->best_msgs_per_s * static_cast<double>(size) * 1e-9;
  t->median_gb_per_s = t->median_msgs_per_s * static_cast<double>(size) * 1e-9;
}

long RepCount(const RepetitionPlan& plan, double warm_rate, long max) {
  const long by_time = static_cast<long>(warm_rate * plan.rep_budget_s);
  return std::max<long>(1, std::min(max, by_time));
}

Throughput Merge(const Throughput& a, const Throughput& b) {
  if (a.rates.empty()) return b;
  std::vector<double> rates = a.rates;
  rates.insert(rates.end(), b.rates.begin(), b.rates.end());
  Throughput t;
  FillRates(rates, b.size, &t);
  t.parent_cs_per_msg = (a.parent_cs_per_msg + b.parent_cs_per_msg) / 2;
  t.child_cs_per_msg = (a.child_cs_per_msg + b.child_cs_per_msg) / 2;
  return t;
}

}  // namespace grpc_shm::bench
