// End-to-end: the engine against an in-process sd::net::HttpServer on an ephemeral port.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "sd/loadgen/engine.hpp"
#include "sd/net/server.hpp"

using namespace sd::loadgen;
using namespace std::chrono_literals;

namespace {

class RunningServer {
 public:
  explicit RunningServer(sd::net::Router router, int threads = 1)
      : server_(opts(threads), std::move(router)) {
    sd::Status st = server_.start();
    if (!st.is_ok()) throw std::runtime_error(st.to_string());
    thread_ = std::thread([this] { server_.run(); });
  }
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  uint16_t port() const { return server_.port(); }

 private:
  static sd::net::ServerOptions opts(int threads) {
    sd::net::ServerOptions o;
    o.threads = threads;
    o.shutdown_grace = 200ms;
    return o;
  }
  sd::net::HttpServer server_;
  std::thread thread_;
};

sd::net::Router hello_router() {
  sd::net::Router r;
  r.add(sd::net::Method::kGet, "/hello", [](sd::net::Request&) {
    return sd::net::Response::json(200, {{"hello", "world"}});
  });
  r.add(sd::net::Method::kGet, "/fail",
        [](sd::net::Request&) { return sd::net::Response::error(500, "boom", "always fails"); });
  return r;
}

RunConfig http_config(uint16_t port, const std::string& path) {
  WorkloadOptions o;
  o.path = path;
  auto w = make_workload("http-get", o);
  REQUIRE(w.is_ok());
  RunConfig cfg;
  cfg.workload = *w;
  cfg.target.host = "127.0.0.1";
  cfg.target.port = port;
  cfg.connections = 4;
  cfg.threads = 2;
  cfg.warmup = 200ms;
  cfg.duration = 1000ms;
  cfg.drain_timeout = 1000ms;
  return cfg;
}

void require_sane(const RunResult& r) {
  REQUIRE(r.ops > 0);
  REQUIRE(r.ops == r.ok + r.conflicts + r.errors);
  REQUIRE(r.latency.count() == r.ops);
  const auto& h = r.latency;
  REQUIRE(h.percentile(50) > 0);
  REQUIRE(h.percentile(50) <= h.percentile(90));
  REQUIRE(h.percentile(90) <= h.percentile(99));
  REQUIRE(h.percentile(99) <= h.percentile(99.9));
  REQUIRE(h.percentile(99.9) <= h.max());
  auto j = to_json(r);
  for (const char* k :
       {"workload", "target", "mode", "connections", "rate", "duration_s", "ops", "ok", "conflicts",
        "errors", "throughput_ops_s", "latency_us", "error_samples"})
    REQUIRE(j.contains(k));
  for (const char* k : {"p50", "p90", "p99", "p999", "max", "mean"})
    REQUIRE(j["latency_us"].contains(k));
}

}  // namespace

TEST_CASE("smoke: closed and open loop against an in-process HTTP server", "[integration]") {
  RunningServer server(hello_router());

  SECTION("closed loop") {
    auto cfg = http_config(server.port(), "/hello");
    std::atomic<int> progress{0};
    cfg.on_progress = [&](const Progress&) { ++progress; };
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(cfg);
    REQUIRE(r.is_ok());
    REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);  // bounded: stops by itself
    require_sane(*r);
    REQUIRE(r->errors == 0);
    REQUIRE(r->ok == r->ops);
    REQUIRE(r->mode == "closed");
    REQUIRE(r->duration_s == Approx(1.0).epsilon(0.01));
    REQUIRE(progress >= 1);
  }
  SECTION("open loop hits the requested rate") {
    auto cfg = http_config(server.port(), "/hello");
    cfg.rate = 2000;
    auto r = run(cfg);
    REQUIRE(r.is_ok());
    require_sane(*r);
    REQUIRE(r->errors == 0);
    REQUIRE(r->mode == "open");
    REQUIRE(r->ops >= 1900);  // 2000/s for 1 s, measured by intended time
    REQUIRE(r->ops <= 2001);
  }
  SECTION("max-ops caps the run") {
    auto cfg = http_config(server.port(), "/hello");
    cfg.max_ops = 100;
    cfg.duration = 10s;
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(cfg);
    REQUIRE(r.is_ok());
    REQUIRE(r->ops == 100);
    REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
  }
  SECTION("non-2xx counts as errors with samples") {
    auto cfg = http_config(server.port(), "/fail");
    cfg.duration = 300ms;
    auto r = run(cfg);
    REQUIRE(r.is_ok());
    REQUIRE(r->ops > 0);
    REQUIRE(r->errors == r->ops);
    REQUIRE(!r->error_samples.empty());
    REQUIRE(r->error_samples.size() <= cfg.max_error_samples);
    REQUIRE(r->error_samples[0].find("HTTP 500") != std::string::npos);
  }
}

TEST_CASE("smoke: open loop reports a server stall as latency", "[integration]") {
  // One server thread; one request stalls it for 300 ms. Every op intended during the stall must
  // report its queueing time (coordinated-omission correction).
  std::atomic<int> calls{0};
  sd::net::Router r;
  r.add(sd::net::Method::kGet, "/stall", [&](sd::net::Request&) {
    if (++calls == 150) std::this_thread::sleep_for(300ms);
    return sd::net::Response::text(200, "ok");
  });
  RunningServer server(std::move(r));
  auto cfg = http_config(server.port(), "/stall");
  cfg.warmup = 0ms;
  cfg.rate = 200;
  auto res = run(cfg);
  REQUIRE(res.is_ok());
  REQUIRE(res->errors == 0);
  REQUIRE(res->latency.max() >= 250'000'000);
  // ~60 of ~200 ops were intended during the stall; about half of them waited > 150 ms.
  REQUIRE(res->latency.percentile(90) >= 100'000'000);
}

TEST_CASE("smoke: refused targets and dead servers fail to start", "[integration]") {
  auto cfg = http_config(1, "/hello");
  cfg.target.host = "10.1.2.3";
  auto r = run(cfg);
  REQUIRE(r.status().code() == sd::Code::kInvalidArgument);
  REQUIRE(r.status().message().find("loopback") != std::string::npos);

  uint16_t dead_port = 0;
  {
    RunningServer s(hello_router());
    dead_port = s.port();
  }
  cfg = http_config(dead_port, "/hello");
  r = run(cfg);
  REQUIRE(r.status().code() == sd::Code::kUnavailable);

  cfg.connections = 3;
  auto h = make_workload("dlock-handoff", {});
  REQUIRE(h.is_ok());
  cfg.workload = *h;
  REQUIRE(run(cfg).status().code() == sd::Code::kInvalidArgument);  // odd connection count
}

TEST_CASE("smoke: a server that never answers times out and the run still ends", "[integration]") {
  std::mutex mu;
  std::vector<sd::net::Responder> parked;
  sd::net::Router r;
  r.add_async(sd::net::Method::kGet, "/never", [&](sd::net::Request&, sd::net::Responder out) {
    std::lock_guard<std::mutex> lk(mu);
    parked.push_back(std::move(out));
  });
  RunningServer server(std::move(r));
  auto cfg = http_config(server.port(), "/never");
  cfg.warmup = 0ms;
  cfg.duration = 500ms;
  cfg.request_timeout = 200ms;
  cfg.drain_timeout = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  auto res = run(cfg);
  REQUIRE(res.is_ok());
  REQUIRE(std::chrono::steady_clock::now() - t0 < 3s);
  REQUIRE(res->ok == 0);
  REQUIRE(res->errors > 0);
  REQUIRE(res->error_samples.at(0).find("no reply within 200 ms") != std::string::npos);
  std::lock_guard<std::mutex> lk(mu);
  for (auto& p : parked) p.send(sd::net::Response::text(200, "late"));
}

TEST_CASE("smoke: a timed step's round trip is reported on its own", "[integration]") {
  // Two requests per op: a fast timed one and a ~2 ms untimed one. The step histogram holds one
  // sample per measured op, and only the fast request's time.
  sd::net::Router r = hello_router();
  r.add(sd::net::Method::kGet, "/slow", [](sd::net::Request&) {
    std::this_thread::sleep_for(2ms);
    return sd::net::Response::text(200, "ok");
  });
  RunningServer server(std::move(r), 2);
  auto cfg = http_config(server.port(), "/hello");
  Step fast{"fast",
            [](StepContext&) {
              return Call{sd::net::Method::kGet, "/hello", {}, {}};
            },
            [](const Reply& rep, StepContext&) {
              return rep.status == 200 ? Verdict::next() : Verdict::error("fast");
            },
            /*timed=*/true};
  Step slow{"slow",
            [](StepContext&) {
              return Call{sd::net::Method::kGet, "/slow", {}, {}};
            },
            [](const Reply& rep, StepContext&) {
              return rep.status == 200 ? Verdict::ok() : Verdict::error("slow");
            }};
  cfg.workload.op = {fast, slow};
  cfg.duration = 500ms;
  auto res = run(cfg);
  REQUIRE(res.is_ok());
  require_sane(*res);
  REQUIRE(res->errors == 0);
  REQUIRE(res->steps.size() == 1);
  REQUIRE(res->steps[0].name == "fast");
  REQUIRE(res->steps[0].latency.count() == res->ops);
  REQUIRE(res->latency.percentile(50) >= 2'000'000);
  REQUIRE(res->steps[0].latency.percentile(50) < res->latency.percentile(50));
  auto j = to_json(*res);
  REQUIRE(j["steps"]["fast"]["count"] == res->ops);
  REQUIRE(j["steps"]["fast"]["latency_us"].contains("p99"));
  REQUIRE(!to_json(RunResult{}).contains("steps"));
}
