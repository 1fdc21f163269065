#pragma once
// Helpers for the cross-process ticketd tests: start the real binary on a free port with a state
// directory (always killed by RAII), JSON-over-HTTP wrappers and a server-sent events parser.

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"
#include "sd/testing/sse_events.hpp"
#include "sd/testing/testing.hpp"

#ifndef SD_TICKETD_BIN
#error "SD_TICKETD_BIN must name the ticketd binary (set by tests/CMakeLists.txt)"
#endif

namespace ticketd_test {

using nlohmann::json;
using namespace std::chrono_literals;

// A running ticketd. The destructor SIGKILLs it (sd::testing::Process).
struct Ticketd {
  std::optional<sd::testing::Process> proc;
  uint16_t port = 0;
  std::string log_path;

  // Starts ticketd --state-dir `state_dir` plus `extra` flags on a free port and waits until it
  // accepts connections (it migrates, seeds and reconciles before it listens); retries with
  // another port when the chosen one was taken meanwhile. `name` names the log file.
  static Ticketd start(const sd::testing::TempDir& dir, const std::string& state_dir,
                       std::vector<std::string> extra = {}, const std::string& name = "ticketd") {
    Ticketd d;
    d.log_path = dir.file(name + ".log");
    auto started = sd::testing::start_server(
        [&](uint16_t port) {
          std::vector<std::string> argv = {SD_TICKETD_BIN, "--port", std::to_string(port),
                                           "--state-dir", state_dir};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        },
        d.log_path, {.start_timeout = 20s});
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
  sd::net::Headers headers;
  std::string raw;
  const std::string* header(std::string_view name) const {
    return sd::net::find_header(headers, name);
  }
};

inline Reply to_reply(const sd::Result<sd::net::ClientResponse>& r) {
  Reply out;
  if (!r.is_ok()) return out;
  out.status = r->status;
  out.headers = r->headers;
  out.raw = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

inline Reply get(sd::net::HttpClient& c, const std::string& target) {
  return to_reply(c.get(target));
}

inline Reply post(sd::net::HttpClient& c, const std::string& target, const json& body,
                  const sd::net::Headers& headers = {}) {
  sd::net::Headers h = headers;
  h.emplace_back("Content-Type", "application/json");
  return to_reply(c.request(sd::net::Method::kPost, target, body.dump(), h));
}

using sd::testing::SseEvent;
using sd::testing::SseParser;

}  // namespace ticketd_test
