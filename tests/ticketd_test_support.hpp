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
    for (int attempt = 0; attempt < 5; ++attempt) {
      d.port = sd::testing::free_port();
      std::vector<std::string> argv = {SD_TICKETD_BIN, "--port", std::to_string(d.port),
                                       "--state-dir", state_dir};
      argv.insert(argv.end(), extra.begin(), extra.end());
      sd::testing::ProcessOptions opts;
      opts.stdout_path = d.log_path;
      opts.stderr_path = d.log_path;
      opts.die_with_parent = true;
      auto p = sd::testing::Process::spawn(argv, opts);
      REQUIRE(p.is_ok());
      d.proc.emplace(std::move(*p));
      auto deadline = std::chrono::steady_clock::now() + 20s;
      while (std::chrono::steady_clock::now() < deadline && d.proc->running()) {
        if (sd::testing::wait_for_port(d.port, 50ms)) return d;
      }
      d.proc.reset();
      std::this_thread::sleep_for(100ms);
    }
    FAIL("ticketd did not start; log:\n" << sd::testing::read_file(d.log_path));
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

// One server-sent event.
struct SseEvent {
  std::string event;
  std::string data;
};

// Incremental text/event-stream parser: feed() bytes as they arrive, complete events come out.
class SseParser {
 public:
  std::vector<SseEvent> feed(std::string_view bytes) {
    buf_.append(bytes);
    std::vector<SseEvent> out;
    size_t end;
    while ((end = buf_.find("\n\n")) != std::string::npos) {
      std::string block = buf_.substr(0, end + 1);
      buf_.erase(0, end + 2);
      SseEvent ev;
      bool any = false;
      size_t pos = 0;
      while (pos < block.size()) {
        size_t nl = block.find('\n', pos);
        std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("event: ", 0) == 0) {
          ev.event = line.substr(7);
          any = true;
        } else if (line.rfind("data: ", 0) == 0) {
          if (!ev.data.empty()) ev.data += '\n';
          ev.data += line.substr(6);
          any = true;
        }
      }
      if (any) out.push_back(std::move(ev));
    }
    return out;
  }

 private:
  std::string buf_;
};

}  // namespace ticketd_test
