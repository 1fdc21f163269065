#pragma once
// Internals of the `dlock` command-line tool: exit codes, duration parsing, subcommands.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/dlock/backend.hpp"

namespace CLI {
class App;
}

namespace sd::dlock::cli {

// Exit codes (sysexits.h where one fits). Also printed by --help (kExitCodesHelp).
//   run:   CMD's own exit code when it ran (128+N if it died by signal N)
//   0      ok (other subcommands)
//   1      conflict or not found: lock held elsewhere, not the holder, unknown name/lease
//   64     usage error (bad flags, bad duration, bad URI, bad name)          EX_USAGE
//   69     backend unreachable or backend error                              EX_UNAVAILABLE
//   75     run: the lock was not acquired within --wait                      EX_TEMPFAIL
//   76     run: the lock was lost while CMD ran (CMD was terminated)         EX_PROTOCOL
//   127    run: CMD could not be executed
//   128+N  run: dlock got signal N (SIGINT/SIGTERM) while waiting for the lock
constexpr int kExitOk = 0;
constexpr int kExitConflict = 1;
constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;
constexpr int kExitNotAcquired = 75;
constexpr int kExitLost = 76;
constexpr int kExitExecFailed = 127;

extern const char* const kExitCodesHelp;

// "500ms", "10s", "2m", "1h", or a plain number of milliseconds.
std::optional<Duration> parse_duration(std::string_view s);

// Maps a failed Status of a plain subcommand to its exit code, printing it on stderr.
int fail(const Status& s);

nlohmann::json lock_info_json(const LockInfo& info);

struct AcquireArgs {
  std::string name, ttl = "30s", wait = "0";
  bool shared = false;
};
struct ReleaseArgs {
  std::string name, lease;
  Token token = 0;
};
struct RunArgs {
  std::string name, ttl = "10s", wait = "0s", grace = "5s";
  bool shared = false;
  std::vector<std::string> command;
};

int cmd_acquire(const std::string& uri, const AcquireArgs& a);
int cmd_release(const std::string& uri, const ReleaseArgs& a);
int cmd_status(const std::string& uri, const std::string& name);
int cmd_list(const std::string& uri, const std::string& prefix);
int cmd_run(const std::string& uri, const RunArgs& a);

// `dlock lab` (lab.cpp): registers the subcommand; its callback sets `action`. Its own exit codes:
// 0 no violation, 1 violation, 2 usage, 69 could not start.
CLI::App* add_lab_command(CLI::App& app, std::function<int()>& action, int argc, char** argv);

}  // namespace sd::dlock::cli
