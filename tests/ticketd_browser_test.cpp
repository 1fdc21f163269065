// The ticketd web UI in a real browser: starts ticketd on a free port with a fresh state dir and
// runs tests/browser/ticketing_ui.mjs (node + playwright-core driving Debian's chromium) against
// it: two shoppers on one live seat map (hold seen by the other without a reload, then sold), an
// order id after paying, and the flash sale's waiting room.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

#ifndef SD_TICKETD_BIN
#error "SD_TICKETD_BIN must name the ticketd binary (set by tests/CMakeLists.txt)"
#endif
#ifndef SD_TESTS_DIR
#error "SD_TESTS_DIR must name the repo's tests/ directory (set by tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;

namespace {

// A running ticketd on a free port (SIGKILLed by the Process destructor).
struct Ticketd {
  std::optional<sd::testing::Process> proc;
  uint16_t port = 0;
  std::string log_path;
};

Ticketd start_ticketd(const sd::testing::TempDir& dir) {
  Ticketd t;
  t.log_path = dir.file("ticketd.log");
  std::filesystem::create_directories(dir.path() / "state");
  for (int attempt = 0; attempt < 5; ++attempt) {
    t.port = sd::testing::free_port();
    sd::testing::ProcessOptions opts;
    opts.stdout_path = t.log_path;
    opts.stderr_path = t.log_path;
    opts.die_with_parent = true;
    auto p = sd::testing::Process::spawn(
        {SD_TICKETD_BIN, "--port", std::to_string(t.port), "--state-dir", dir.file("state")}, opts);
    REQUIRE(p.is_ok());
    t.proc.emplace(std::move(*p));
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline && t.proc->running()) {
      if (sd::testing::wait_for_port(t.port, 50ms)) return t;
    }
    t.proc.reset();
    std::this_thread::sleep_for(100ms);
  }
  FAIL("ticketd did not start; log:\n" << sd::testing::read_file(t.log_path));
  return t;
}

}  // namespace

TEST_CASE("ticketd web UI in chromium: live seat map with hold and pay plus the waiting room",
          "[integration][browser]") {
  const std::filesystem::path browser_dir = std::filesystem::path(SD_TESTS_DIR) / "browser";
  const std::filesystem::path script = browser_dir / "ticketing_ui.mjs";
  REQUIRE(std::filesystem::exists(script));
  // Never skip silently: a missing toolchain is a failure with the fix in the message.
  if (!std::filesystem::exists(browser_dir / "node_modules" / "playwright-core")) {
    FAIL("tests/browser/node_modules is missing: run `npm ci` in " << browser_dir.string()
                                                                   << " (./sd test does that)");
  }
  auto node = sd::testing::find_executable("node", "nodejs");
  if (!node.is_ok()) FAIL(node.status().message());

  sd::testing::TempDir dir("ticketd-browser");
  Ticketd t = start_ticketd(dir);
  const std::string url = "http://127.0.0.1:" + std::to_string(t.port);

  const std::string out_path = dir.file("browser.log");
  sd::testing::ProcessOptions opts;
  opts.env["TICKETD_URL"] = url;
  opts.stdout_path = out_path;
  opts.stderr_path = out_path;
  opts.new_process_group = true;  // a timeout kills node and its chromium together
  opts.die_with_parent = true;
  auto start = std::chrono::steady_clock::now();
  auto p = sd::testing::Process::spawn({*node, script.string()}, opts);
  REQUIRE(p.is_ok());
  std::optional<int> code = p->wait_for(120s);  // the script gives up by itself after 60 s
  if (!code) code = p->stop(2s);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string output = sd::testing::read_file(out_path);
  INFO("node " << script.string() << " (TICKETD_URL=" << url << ", " << secs << " s):\n"
               << output << "\nticketd log:\n"
               << sd::testing::read_file(t.log_path));
  REQUIRE(*code == 0);
  REQUIRE(output.find("PASS ticketing_ui") != std::string::npos);
  REQUIRE(t.proc->running());  // ticketd survived the session
}
