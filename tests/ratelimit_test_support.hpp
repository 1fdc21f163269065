#pragma once
// Helpers for the cross-process ratelimitd tests: start the real binary on a free port (always
// killed by RAII), write rules files atomically, and small HTTP wrappers.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"
#include "sd/testing/testing.hpp"

#ifndef SD_RATELIMITD_BIN
#error "SD_RATELIMITD_BIN must name the ratelimitd binary (set by tests/CMakeLists.txt)"
#endif

namespace ratelimitd_test {

using nlohmann::json;
using namespace std::chrono_literals;

// Writes `text` to `path` through a temp file and rename, as editors and config tools do (a
// reader never sees a half-written file).
inline void write_rules(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    REQUIRE(out.good());
  }
  std::filesystem::rename(tmp, path);
}

// A running ratelimitd. The destructor SIGKILLs it (sd::testing::Process).
struct Ratelimitd {
  std::optional<sd::testing::Process> proc;
  uint16_t port = 0;
  std::string log_path;

  // Starts ratelimitd --rules `rules` plus `extra` flags on a free port and waits until it
  // accepts connections; retries with another port when the chosen one was taken meanwhile.
  static Ratelimitd start(const sd::testing::TempDir& dir, const std::string& rules,
                          std::vector<std::string> extra = {}, const std::string& name = "rl") {
    Ratelimitd d;
    d.log_path = dir.file(name + ".log");
    auto started = sd::testing::start_server(
        [&](uint16_t port) {
          std::vector<std::string> argv = {SD_RATELIMITD_BIN, "--port", std::to_string(port),
                                           "--rules", rules};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        },
        d.log_path, {.start_timeout = 10s});
    if (!started) FAIL(started.status().message());
    d.proc.emplace(std::move(started->process));
    d.port = started->port;
    return d;
  }

  sd::net::HttpClient client() const { return sd::net::HttpClient("127.0.0.1", port); }

  // GET /v1/rules -> version (0 on failure).
  uint64_t rules_version() const {
    auto c = client();
    auto r = c.get("/v1/rules");
    if (!r.is_ok() || r->status != 200) return 0;
    return json::parse(r->body)["version"].get<uint64_t>();
  }
};

// POST /v1/check for one descriptor; the HTTP status (0: transport failure).
inline int check(sd::net::HttpClient& c, const std::string& domain, const std::string& key,
                 const std::string& value, sd::net::ClientResponse* out = nullptr) {
  json body = {{"domain", domain},
               {"descriptors", {{{"entries", {{{"key", key}, {"value", value}}}}}}}};
  auto r = c.post_json("/v1/check", body);
  if (!r.is_ok()) return 0;
  if (out) *out = *r;
  return r->status;
}

}  // namespace ratelimitd_test
