#pragma once
// One safety experiment (`dlock lab`): start the backend's servers, the fenced resource and N lab
// clients; fault them on a seeded schedule (nemesis.hpp) while printing progress every second;
// then stop everything, merge the histories, check them (checker.hpp) and write
//   DIR/history.jsonl   the merged history (the checker's event indices refer to it)
//   DIR/report.txt      format_report
//   DIR/verdicts.json   report_json (machine-readable verdicts)
//   DIR/timeline.html   the SVG timeline (timeline.hpp)
//   DIR/raw/            each process's own history file; DIR/logs/ their stdout/stderr
//   DIR/servers/        the backend servers' logs (their data files are deleted at the end)
// and print a summary table per client and the verdicts.
//
// Pause targeting: a pause hits the client that is inside its critical section (acquired, not yet
// released, as its live history shows) when there is one, otherwise the scheduled random client.
// Jepsen's nemeses target too; a pause outside a critical section teaches nothing.

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "sd/dlock/lab/history.hpp"
#include "sd/dlock/lab/nemesis.hpp"

namespace sd::dlock::lab {

// Exit codes of `dlock lab`.
constexpr int kLabOk = 0;            // no violation found
constexpr int kLabViolation = 1;     // the checker found a violation
constexpr int kLabUsage = 2;         // bad flags
constexpr int kLabCannotStart = 69;  // a server, the resource or a client could not be started

struct ExperimentOptions {
  BackendKind backend = BackendKind::kDlockd;
  std::vector<FaultKind> faults;
  size_t clients = 5;
  int64_t duration_ms = 30'000;
  uint64_t seed = 42;
  bool fencing = true;
  int64_t ttl_ms = 2'000;
  int64_t work_ms = 50;
  int64_t wait_ms = 0;  // client's acquire wait; 0 = the TTL
  bool redis_persistence = false;
  size_t crash_servers = 1;   // servers one crash kills together (redlock: 3 = a majority)
  bool target_holder = true;  // see "Pause targeting" above
  std::string out_dir;        // "" = ./var/lab/<backend>-<seed>-<unix time>
  std::string command_line;   // shown in the timeline
  // Binaries; "" = next to this executable (/proc/self/exe).
  std::string resource_bin, client_bin, dlockd_bin, clockshift_lib;
};

// Per-client counts for the summary table (from the merged history).
struct ClientSummary {
  size_t acquires_ok = 0, acquires_failed = 0, acquires_unknown = 0;
  size_t writes_accepted = 0, writes_rejected = 0;  // as the resource saw them
  size_t lost_sessions = 0;
};
std::map<std::string, ClientSummary> summarize(const std::vector<Event>& history);
std::string format_summary(const std::map<std::string, ClientSummary>& s);

// Live counts from the processes' history files while the experiment runs.
struct Progress {
  size_t cycles = 0;  // acquires that succeeded
  size_t writes_accepted = 0, writes_rejected = 0;
  std::map<std::string, bool> in_section;  // client -> between acquire ok and release/lost
};
// Folds one event into the live counts.
void update_progress(Progress& p, const Event& e);

// Runs the experiment; progress and results go to `out`, errors to `err`. Returns an exit code.
int run_experiment(const ExperimentOptions& options, std::ostream& out, std::ostream& err);

}  // namespace sd::dlock::lab
