#pragma once
// The lab's nemesis (Jepsen's name for the fault injector): which faults apply to which backend, a
// seeded schedule of faults, the "nemesis" history events that record them, and the clock-offset
// file behind the clock-jump fault.
//
// Faults (the runner applies them; see experiment.hpp):
//   pause      SIGSTOP one client for 1.5-3x TTL, then SIGCONT (Kleppmann's GC pause)
//   crash      SIGKILL one backend server (or --crash-servers of them at once), restart it after
//   0.25-0.75x TTL (dlockd: same SQLite
//              file and port; redis: with or without AOF; etcd: one member, rejoining)
//   leader     SIGKILL the current etcd leader, restart it after 0.5-1.5x TTL
//   clock      jump one Redis instance's wall clock forward by 1.5-3x TTL (its keys expire early)
//   partition  blackhole every proxied connection of one client for 1.5-3x TTL, then heal
//
// Nemesis events are type "info" (Jepsen logs its nemesis as :info too), process "nemesis",
// client = the target ("c2", "redis3", "etcd m1", "dlockd"), value = the planned duration (or the
// clock jump) in ms, error = the parameters in words. A fault period runs from its start event to
// the matching end event of the same target: pause..resume, kill..restart, partition..heal;
// clock-jump is one instant.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/dlock/lab/history.hpp"

namespace sd::dlock::lab {

enum class BackendKind { kDlockd, kRedis, kRedlock, kEtcd };
std::string_view backend_kind_name(BackendKind b);  // "dlockd" | "redis" | "redlock" | "etcd"
std::optional<BackendKind> parse_backend_kind(std::string_view s);
size_t backend_server_count(BackendKind b);  // dlockd 1, redis 1, redlock 5, etcd 3

enum class FaultKind { kPause, kCrash, kLeader, kClock, kPartition };
std::string_view fault_kind_name(FaultKind f);  // "pause" | "crash" | "leader" | "clock" | ...
std::vector<FaultKind> applicable_faults(BackendKind b);
// "pause,crash" -> kinds (deduplicated, in list order). "restart" is an alias of "crash" (every
// crash restarts); "none" or "" = no faults. kInvalidArgument naming the faults that apply.
Result<std::vector<FaultKind>> parse_faults(std::string_view list, BackendKind backend);

struct NemesisOptions {
  std::vector<FaultKind> faults;
  int64_t duration_ms = 30'000;
  int64_t ttl_ms = 2'000;
  size_t clients = 5;
  size_t servers = 1;
  size_t crash_servers = 1;  // servers one crash fault kills together (consecutive indices)
  uint64_t seed = 42;
  int64_t first_fault_ms = 1'000;  // early, so that even a short run sees a fault
  int64_t min_gap_ms = 2'000;      // between consecutive fault starts
  int64_t max_gap_ms = 4'000;
};

struct PlannedFault {
  int64_t at_ms = 0;  // since the experiment started
  FaultKind kind = FaultKind::kPause;
  size_t target =
      0;  // client index (pause, partition), server index (crash, clock); leader: unused
  // pause/partition: how long; crash/leader: down time before the restart; clock: the jump.
  int64_t duration_ms = 0;
  size_t count = 1;  // crash: servers target, target+1, ... (mod servers) go down together
};

// A deterministic schedule: the same options give the same faults on every platform (own PRNG,
// no std:: distributions). Faults start until duration_ms; a target is never faulted twice at
// once, and at most one server is down at a time (an etcd cluster keeps its quorum).
std::vector<PlannedFault> plan_faults(const NemesisOptions& o);

// splitmix64: small, seedable, portable.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next();
  double uniform();                                                   // [0, 1)
  int64_t between(int64_t lo, int64_t hi);                            // [lo, hi]
  size_t index(size_t n) { return static_cast<size_t>(next() % n); }  // n > 0

 private:
  uint64_t s_;
};

// A nemesis history event (see above).
Event nemesis_event(std::string f, std::string target, std::optional<int64_t> value_ms,
                    std::string detail, int64_t time_ns);
// The event name that ends a period started by `f` ("pause" -> "resume", "kill" -> "restart",
// "partition" -> "heal"); nullopt for instants ("clock-jump") and end names.
std::optional<std::string_view> fault_end_name(std::string_view f);

// The file the clock-shift LD_PRELOAD shim (libsd_clockshift.so) maps: one int64, the wall-clock
// offset in ns, stored atomically through a shared mapping so the shifted process sees it at once.
class ClockOffsetFile {
 public:
  static Result<std::unique_ptr<ClockOffsetFile>> create(const std::string& path);  // offset 0
  ~ClockOffsetFile();
  ClockOffsetFile(const ClockOffsetFile&) = delete;
  ClockOffsetFile& operator=(const ClockOffsetFile&) = delete;
  const std::string& path() const { return path_; }
  void set_offset_ns(int64_t ns);
  int64_t offset_ns() const;

 private:
  ClockOffsetFile(std::string path, int64_t* map) : path_(std::move(path)), map_(map) {}
  std::string path_;
  int64_t* map_;
};

}  // namespace sd::dlock::lab
