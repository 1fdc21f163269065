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
#include "ticketd_test_support.hpp"

#ifndef SD_TESTS_DIR
#error "SD_TESTS_DIR must name the repo's tests/ directory (set by tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;

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
  std::filesystem::create_directories(dir.path() / "state");
  auto t = ticketd_test::Ticketd::start(dir, dir.file("state"));
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
