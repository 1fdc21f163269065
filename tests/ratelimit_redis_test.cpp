// Three ratelimitd processes sharing one real Redis never admit more than the global limit:
// each decision is one atomic Lua script on Redis's clock, whichever process asks.

#include <atomic>
#include <mutex>

#include "ratelimit_test_support.hpp"
#include "sd/testing/servers.hpp"

using namespace ratelimitd_test;  // NOLINT(google-build-using-namespace)

namespace {

constexpr int kWindowLimit = 50;  // fixed window: per hour
constexpr int kBurst = 20;        // token bucket: 60 per hour (one a minute), burst 20
constexpr int kThreadsPerProcess = 3;
constexpr int kAttemptsPerThread = 120;  // per rule: 9 threads * 120 = 1080 attempts each

// Redis windows follow the wall clock (TIME): do not straddle an hour boundary.
void avoid_hour_boundary() {
  using namespace std::chrono;
  auto into_hour = duration_cast<seconds>(system_clock::now().time_since_epoch()) % 3600;
  if (into_hour > 3600s - 60s) std::this_thread::sleep_for(3600s - into_hour + 2s);
}

}  // namespace

TEST_CASE("ratelimitd: 3 processes on one real Redis never admit more than the global limit",
          "[integration]") {
  sd::testing::TempDir dir("rl-redis");
  auto redis = sd::testing::RedisServer::start(dir.file("redis"));
  INFO((redis ? std::string() : redis.status().to_string()));
  REQUIRE(redis.is_ok());
  const std::string rules = dir.file("rules.yaml");
  write_rules(rules,
              "domain: global\n"
              "descriptors:\n"
              "  - key: window\n"
              "    rate_limit: {unit: hour, requests_per_unit: " +
                  std::to_string(kWindowLimit) +
                  ", algorithm: fixed_window}\n"
                  "  - key: bucket\n"
                  "    rate_limit: {unit: hour, requests_per_unit: 60, algorithm: token_bucket, "
                  "burst: " +
                  std::to_string(kBurst) + "}\n");
  const std::string store = "redis://" + (*redis)->address();
  std::vector<Ratelimitd> procs;
  for (int i = 0; i < 3; ++i) {
    procs.push_back(Ratelimitd::start(
        dir, rules, {"--store", store, "--threads", "4", "--on-store-error", "closed"},
        "rl" + std::to_string(i)));
  }
  avoid_hour_boundary();

  std::atomic<int> window_allowed{0}, window_denied{0}, bucket_allowed{0}, bucket_denied{0};
  std::atomic<int> errors{0};
  std::mutex error_mu;
  std::string first_error;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 3 * kThreadsPerProcess; ++t) {
    threads.emplace_back([&, t] {
      auto c = procs[static_cast<size_t>(t % 3)].client();
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        for (const char* key : {"window", "bucket"}) {
          sd::net::ClientResponse resp;
          int st = check(c, "global", key, "the-one-key", &resp);
          bool window = std::string(key) == "window";
          if (st == 200) {
            (window ? window_allowed : bucket_allowed).fetch_add(1);
          } else if (st == 429) {
            (window ? window_denied : bucket_denied).fetch_add(1);
          } else {
            errors.fetch_add(1);
            std::lock_guard lock(error_mu);
            if (first_error.empty()) first_error = std::to_string(st) + " " + resp.body;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  INFO(first_error);
  REQUIRE(errors.load() == 0);
  const int attempts = 3 * kThreadsPerProcess * kAttemptsPerThread;
  REQUIRE(window_allowed.load() + window_denied.load() == attempts);
  REQUIRE(window_allowed.load() == kWindowLimit);  // exactly: never more, and nothing lost
  // Token bucket: the full burst, plus at most one token per started minute of the run.
  int refill_bound = 1 + static_cast<int>(elapsed_s / 60.0);
  REQUIRE(bucket_allowed.load() >= kBurst);
  REQUIRE(bucket_allowed.load() <= kBurst + refill_bound);
  REQUIRE(bucket_allowed.load() + bucket_denied.load() == attempts);

  // Every process made decisions (the load really was spread).
  for (auto& p : procs) {
    auto c = p.client();
    auto m = c.get("/metrics");
    REQUIRE(m.is_ok());
    REQUIRE(m->body.find("ratelimit_decisions_total{domain=\"global\",rule=\"global/window\","
                         "result=\"limited\"}") != std::string::npos);
  }
}
