#pragma once
// Helpers for the cross-process dlockd tests: start the real binary on a free port (always
// killed by RAII) and small JSON-over-HTTP wrappers.

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"
#include "sd/testing/testing.hpp"

#ifndef SD_DLOCKD_BIN
#error "SD_DLOCKD_BIN must name the dlockd binary (set by tests/CMakeLists.txt)"
#endif

namespace dlockd_test {

using nlohmann::json;
using namespace std::chrono_literals;

// A running dlockd. The destructor SIGKILLs it (sd::testing::Process).
struct Dlockd {
  std::optional<sd::testing::Process> proc;
  uint16_t port = 0;
  std::string log_path;

  // Starts dlockd with --store `store` on `port` (0: a free one) and waits until it accepts
  // connections. Retries with another port when the chosen one was taken meanwhile; with a fixed
  // port (restart), retries the same port for a while.
  static Dlockd start(const sd::testing::TempDir& dir, const std::string& store,
                      uint16_t fixed_port = 0, std::vector<std::string> extra = {}) {
    Dlockd d;
    d.log_path = dir.file("dlockd.log");
    auto started = sd::testing::start_server(
        [&](uint16_t port) {
          std::vector<std::string> argv = {SD_DLOCKD_BIN, "--port", std::to_string(port), "--store",
                                           store};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        },
        d.log_path, {.fixed_port = fixed_port, .start_timeout = 5s, .die_with_parent = false});
    if (!started) FAIL(started.status().message());
    d.proc.emplace(std::move(started->process));
    d.port = started->port;
    return d;
  }

  sd::net::HttpClient client() const { return sd::net::HttpClient("127.0.0.1", port); }
};

struct Reply {
  int status = 0;  // 0: transport failure
  json body;
};

inline Reply to_reply(const sd::Result<sd::net::ClientResponse>& r) {
  Reply out;
  if (!r.is_ok()) return out;
  out.status = r->status;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

inline Reply post(sd::net::HttpClient& c, const std::string& target, const json& body,
                  std::chrono::milliseconds timeout = 0ms) {
  return to_reply(c.post_json(target, body, timeout));
}
inline Reply get(sd::net::HttpClient& c, const std::string& target) {
  return to_reply(c.get(target));
}

inline std::string new_lease(sd::net::HttpClient& c, long long ttl_ms) {
  Reply r = post(c, "/v1/leases", {{"ttl_ms", ttl_ms}});
  REQUIRE(r.status == 201);
  return r.body["lease_id"].get<std::string>();
}

inline bool is_json_error(const Reply& r) {
  return r.body.is_object() && r.body.contains("error") && r.body["error"].is_string() &&
         r.body.contains("message") && r.body["message"].is_string();
}

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace dlockd_test
