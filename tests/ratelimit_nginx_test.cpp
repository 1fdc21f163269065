// A real nginx (Debian nginx-light has auth_request) in front of a tiny upstream returns 429s from
// ratelimitd's decisions. Runs designs/rate-limiter/examples/nginx.conf itself, ports replaced.

#include <atomic>

#include "ratelimit_test_support.hpp"
#include "sd/net/server.hpp"
#include "sd/testing/servers.hpp"

#ifndef SD_RATELIMIT_EXAMPLES_DIR
#error "SD_RATELIMIT_EXAMPLES_DIR must name designs/rate-limiter/examples (tests/CMakeLists.txt)"
#endif

using namespace ratelimitd_test;  // NOLINT(google-build-using-namespace)

namespace {

constexpr int kLimit = 5;  // per hour, token bucket: the 6th request is 12 minutes early

// Replaces every occurrence (the example's comments may repeat an address); at least one.
void replace_all(std::string& text, const std::string& from, const std::string& to) {
  size_t n = 0;
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
    ++n;
  }
  INFO("placeholder " << from);
  REQUIRE(n > 0);
}

// The example site with its three addresses replaced, inside a main config that keeps every
// path nginx writes (pid, logs, temp files) in `dir` and stays in the foreground.
std::string nginx_config(const sd::testing::TempDir& dir, uint16_t front, uint16_t ratelimitd,
                         uint16_t app) {
  std::string site = sd::testing::read_file(SD_RATELIMIT_EXAMPLES_DIR "/nginx.conf");
  REQUIRE_FALSE(site.empty());
  replace_all(site, "server 127.0.0.1:7402;",
              "server 127.0.0.1:" + std::to_string(ratelimitd) + ";");
  replace_all(site, "listen 127.0.0.1:8000;", "listen 127.0.0.1:" + std::to_string(front) + ";");
  replace_all(site, "proxy_pass http://127.0.0.1:8080;",
              "proxy_pass http://127.0.0.1:" + std::to_string(app) + ";");
  write_rules(dir.file("site.conf"), site);
  const std::string d = dir.path().string();
  return "daemon off;\n"
         "master_process off;\n"
         "worker_processes 1;\n"
         "pid " +
         d +
         "/nginx.pid;\n"
         "error_log " +
         d +
         "/error.log info;\n"
         "events { worker_connections 64; }\n"
         "http {\n"
         "  access_log " +
         d +
         "/access.log;\n"
         "  client_body_temp_path " +
         d +
         "/body;\n"
         "  proxy_temp_path " +
         d +
         "/proxy;\n"
         "  fastcgi_temp_path " +
         d +
         "/fastcgi;\n"
         "  uwsgi_temp_path " +
         d +
         "/uwsgi;\n"
         "  scgi_temp_path " +
         d +
         "/scgi;\n"
         "  default_type text/plain;\n"
         "  include " +
         d +
         "/site.conf;\n"
         "}\n";
}

// "\"web.remote_address\";r=<r>;t=<t>" -> {r, t}; the name must be the rule's policy.
std::pair<int, int> parse_ratelimit(const std::string& v) {
  const std::string prefix = "\"web.remote_address\";r=";
  INFO("RateLimit: " << v);
  REQUIRE(v.starts_with(prefix));
  size_t t = v.find(";t=");
  REQUIRE(t != std::string::npos);
  return {std::stoi(v.substr(prefix.size(), t - prefix.size())), std::stoi(v.substr(t + 3))};
}

std::string nginx_path() {
  auto found = sd::testing::find_executable("nginx", "nginx-light");
  if (found.is_ok()) return *found;
  return "/usr/sbin/nginx";  // /usr/sbin is often not on a non-root PATH
}

}  // namespace

TEST_CASE("ratelimitd: a real nginx in front of an upstream returns 429s from our decisions",
          "[integration]") {
  sd::testing::TempDir dir("rl-nginx");
  const std::string rules = dir.file("rules.yaml");
  write_rules(rules,
              "domain: web\n"
              "descriptors:\n"
              "  - key: remote_address\n"
              "    rate_limit: {unit: hour, requests_per_unit: " +
                  std::to_string(kLimit) + ", algorithm: token_bucket}\n");
  auto rl = Ratelimitd::start(dir, rules);

  // The upstream app: counts what reaches it.
  std::atomic<int> app_hits{0};
  sd::net::Router router;
  router.add(sd::net::Method::kGet, "/hello", [&](sd::net::Request&) {
    app_hits.fetch_add(1);
    return sd::net::Response::text(200, "hello");
  });
  sd::net::HttpServer app({}, std::move(router));
  REQUIRE(app.start().is_ok());
  std::thread app_thread([&] { app.run(); });
  struct StopApp {
    sd::net::HttpServer& s;
    std::thread& t;
    ~StopApp() {
      s.stop();
      t.join();
    }
  } stop_app{app, app_thread};

  const std::string exe = nginx_path();
  REQUIRE(std::filesystem::exists(exe));
  std::optional<sd::testing::Process> nginx;  // SIGKILLed on scope exit
  uint16_t front = 0;
  for (int attempt = 0; attempt < 5 && !nginx; ++attempt) {
    front = sd::testing::free_port();
    const std::string conf = dir.file("nginx.conf");
    write_rules(conf, nginx_config(dir, front, rl.port, app.port()));
    sd::testing::ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = dir.file("nginx.out");
    opts.die_with_parent = true;
    auto p = sd::testing::Process::spawn(
        {exe, "-p", dir.path().string(), "-c", conf, "-e", dir.file("error.log")}, opts);
    REQUIRE(p.is_ok());
    nginx.emplace(std::move(*p));
    if (!sd::testing::eventually(
            [&] { return sd::testing::wait_for_port(front, 20ms) || !nginx->running(); }, 10s) ||
        !nginx->running()) {
      nginx.reset();  // port taken meanwhile (or a config error: see the log below)
    }
  }
  INFO("nginx log:\n"
       << sd::testing::read_file(dir.file("error.log"))
       << sd::testing::read_file(dir.file("nginx.out")));
  REQUIRE(nginx.has_value());

  sd::net::HttpClient client("127.0.0.1", front);
  for (int i = 0; i < kLimit; ++i) {
    auto r = client.get("/hello");
    REQUIRE(r.is_ok());
    REQUIRE(r->status == 200);
    REQUIRE(r->body == "hello");
    REQUIRE(*r->header("RateLimit-Policy") == "\"web.remote_address\";q=5;w=3600");
    // t: the bucket refills one token per 720 s, minus the little real time that passed.
    auto [remaining, reset] = parse_ratelimit(*r->header("RateLimit"));
    REQUIRE(remaining == kLimit - 1 - i);
    REQUIRE(reset <= 720 * (i + 1));
    REQUIRE(reset >= 720 * (i + 1) - 1);
    REQUIRE(r->header("Retry-After") == nullptr);
  }
  for (int i = 0; i < 10; ++i) {
    auto r = client.get("/hello");
    REQUIRE(r.is_ok());
    REQUIRE(r->status == 429);
    REQUIRE(r->body == "rate limited\n");
    REQUIRE(r->header("Retry-After") != nullptr);
    int retry = std::stoi(*r->header("Retry-After"));
    REQUIRE(retry >= 719);  // 12 minutes for the next token, less what elapsed
    REQUIRE(retry <= 720);
    auto [remaining, reset] = parse_ratelimit(*r->header("RateLimit"));
    REQUIRE(remaining == 0);
    REQUIRE(reset <= 3600);
    REQUIRE(reset >= 3599);
    REQUIRE(*r->header("RateLimit-Policy") == "\"web.remote_address\";q=5;w=3600");
  }
  REQUIRE(app_hits.load() == kLimit);  // denied requests never reached the app
  // ratelimitd made those decisions: 5 allowed, 10 limited.
  auto c = rl.client();
  auto m = c.get("/metrics");
  REQUIRE(m.is_ok());
  const std::string series =
      "ratelimit_decisions_total{domain=\"web\",rule=\"web/remote_address\",";
  REQUIRE(m->body.find(series + "result=\"allowed\"} 5") != std::string::npos);
  REQUIRE(m->body.find(series + "result=\"limited\"} 10") != std::string::npos);
  // Denials went through the quiet 403 path: no "unexpected status" errors in nginx's log.
  REQUIRE(sd::testing::read_file(dir.file("error.log")).find("unexpected status") ==
          std::string::npos);
}
