#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "sd/metrics/metrics.hpp"

using sd::metrics::Histogram;
using sd::metrics::Registry;

TEST_CASE("counters and gauges render with HELP and TYPE lines", "[unit][metrics]") {
  Registry reg;
  reg.counter("jobs_total", "Jobs done.", {{"kind", "a"}}).inc();
  reg.counter("jobs_total", "ignored", {{"kind", "a"}}).inc(2);
  reg.counter("jobs_total", "ignored", {{"kind", "b"}}).inc();
  reg.gauge("queue_depth", "Items queued.").set(7);
  reg.gauge("queue_depth", "").add(-2.5);
  std::string out = reg.render();
  CHECK(out ==
        "# HELP jobs_total Jobs done.\n"
        "# TYPE jobs_total counter\n"
        "jobs_total{kind=\"a\"} 3\n"
        "jobs_total{kind=\"b\"} 1\n"
        "# HELP queue_depth Items queued.\n"
        "# TYPE queue_depth gauge\n"
        "queue_depth 4.5\n");
}

TEST_CASE("label values and help text are escaped", "[unit][metrics]") {
  Registry reg;
  reg.counter("x_total", "line1\nback\\slash", {{"path", "a\"b\\c\nd"}}).inc();
  std::string out = reg.render();
  CHECK(out.find("# HELP x_total line1\\nback\\\\slash\n") != std::string::npos);
  CHECK(out.find("x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
}

TEST_CASE("histogram buckets are cumulative with +Inf / _sum and _count", "[unit][metrics]") {
  Registry reg;
  auto& h = reg.histogram("lat_seconds", "Latency.", {{"op", "get"}}, {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.5);
  h.observe(3);
  auto s = h.snapshot();
  REQUIRE(s.cumulative.size() == 3);
  CHECK(s.cumulative[0] == 1);
  CHECK(s.cumulative[1] == 3);
  CHECK(s.cumulative[2] == 4);
  CHECK(s.count == 4);
  CHECK(s.sum == Approx(4.05));
  std::string out = reg.render();
  CHECK(out.find("# TYPE lat_seconds histogram\n") != std::string::npos);
  CHECK(out.find("lat_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(out.find("lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n") != std::string::npos);
  CHECK(out.find("lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(out.find("lat_seconds_sum{op=\"get\"} 4.05\n") != std::string::npos);
  CHECK(out.find("lat_seconds_count{op=\"get\"} 4\n") != std::string::npos);
}

TEST_CASE("histogram without labels and a boundary value", "[unit][metrics]") {
  Histogram h({1.0, 2.0});
  h.observe(1.0);  // le is inclusive
  auto s = h.snapshot();
  CHECK(s.cumulative == std::vector<uint64_t>{1, 1, 1});
  Registry reg;
  reg.histogram("d", "D.", {}, {1.0}).observe(0.5);
  std::string out = reg.render();
  CHECK(out.find("d_bucket{le=\"1\"} 1\n") != std::string::npos);
  CHECK(out.find("d_sum 0.5\n") != std::string::npos);
  CHECK(out.find("d_count 1\n") != std::string::npos);
}

TEST_CASE("a name registered with another type is rejected", "[unit][metrics]") {
  Registry reg;
  reg.counter("m", "M.");
  CHECK_THROWS_AS(reg.gauge("m", "M."), std::logic_error);
}

TEST_CASE("metrics are safe to update from many threads", "[unit][metrics]") {
  Registry reg;
  auto& c = reg.counter("c_total", "C.");
  auto& h = reg.histogram("h", "H.");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.001);
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(c.value() == 40000);
  CHECK(h.snapshot().count == 40000);
}
