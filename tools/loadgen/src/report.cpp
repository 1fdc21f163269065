// The result JSON consumed by the bench runner. Latencies in microseconds with 0.1 us resolution.
#include <cmath>

#include <nlohmann/json.hpp>

#include "sd/loadgen/engine.hpp"

namespace sd::loadgen {

namespace {
double us(double ns) {
  return std::round(ns / 100.0) / 10.0;
}
double round2(double v) {
  return std::round(v * 100.0) / 100.0;
}

nlohmann::json latency_json(const Histogram& h) {
  return {
      {"p50", us(static_cast<double>(h.percentile(50)))},
      {"p90", us(static_cast<double>(h.percentile(90)))},
      {"p99", us(static_cast<double>(h.percentile(99)))},
      {"p999", us(static_cast<double>(h.percentile(99.9)))},
      {"max", us(static_cast<double>(h.max()))},
      {"mean", us(h.mean())},
  };
}
}  // namespace

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json lat = latency_json(r.latency);
  nlohmann::json keys = {{"dist", std::string(key_dist_name(r.keys.dist))},
                         {"keyspace", r.keys.keyspace}};
  if (r.keys.dist == KeyDist::kZipf) keys["zipf_s"] = r.keys.zipf_s;
  nlohmann::json out = {
      {"workload", r.workload},
      {"target", r.target},
      {"mode", r.mode},
      {"connections", r.connections},
      {"threads", r.threads},
      {"rate", r.rate},
      {"duration_s", round2(r.duration_s)},
      {"ops", r.ops},
      {"ok", r.ok},
      {"conflicts", r.conflicts},
      {"errors", r.errors},
      {"retries", r.retries},
      {"throughput_ops_s", round2(r.throughput_ops_s)},
      {"latency_us", lat},
      {"keys", keys},
      {"seed", r.seed},
      {"error_samples", r.error_samples},
  };
  if (!r.steps.empty()) {
    nlohmann::json steps = nlohmann::json::object();
    for (const auto& st : r.steps)
      steps[st.name] = {{"count", st.latency.count()}, {"latency_us", latency_json(st.latency)}};
    out["steps"] = std::move(steps);
  }
  return out;
}

}  // namespace sd::loadgen
