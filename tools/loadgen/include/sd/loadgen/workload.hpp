#pragma once
// Workloads as data. An operation is a Script: a sequence of Steps. A step builds its request from
// variables (the connection's, set once by the setup script — e.g. a lease id — and the op's own,
// e.g. the key and values captured from earlier replies such as a fencing token), and judges the
// reply: go on, finish the op as ok / conflict, or fail it. The engine owns sockets and time; a
// workload only knows its protocol, so each one lives in one small file and is unit-testable
// without a server.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/loadgen/resp.hpp"
#include "sd/net/http.hpp"

namespace sd::loadgen {

enum class Protocol { kHttp, kResp };

// A small ordered name -> value map (a handful of entries; a vector beats std::map here).
class Vars {
 public:
  const std::string* find(std::string_view name) const;
  const std::string& get(std::string_view name) const;  // "" if absent
  void set(std::string_view name, std::string value);
  void clear() { kv_.clear(); }
  size_t size() const { return kv_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> kv_;
};

struct Call {
  // HTTP
  net::Method method = net::Method::kGet;
  std::string target;  // "/v1/locks/k/acquire"
  std::string body;    // sent as application/json when non-empty
  // RESP
  std::vector<std::string> args;
};

struct Reply {
  int status = 0;  // HTTP status
  std::string body;
  RespValue resp;
};

struct StepContext {
  const Vars& conn;  // per connection, filled by the setup script
  Vars& op;          // per op (per hold, for handoff); a step may write captures here
  const std::string& key;
  uint64_t conn_index;
  uint64_t op_seq;  // per connection, increasing: unique tokens are "<conn>-<seq>"
};

enum class Outcome {
  kNext,      // go on with the next step (the last step's kNext means ok)
  kOk,        // the op succeeded
  kConflict,  // expected contention (lock held, 409 locked, NX failed): counted apart from errors
  kError,     // unexpected reply
};

struct Verdict {
  Outcome outcome = Outcome::kNext;
  std::string message;  // for kError: sampled into the report
  static Verdict next() { return {}; }
  static Verdict ok() { return {Outcome::kOk, {}}; }
  static Verdict conflict() { return {Outcome::kConflict, {}}; }
  static Verdict error(std::string m) { return {Outcome::kError, std::move(m)}; }
};

struct Step {
  std::string name;
  std::function<Call(StepContext&)> make;  // may store values (a token) in ctx.op
  std::function<Verdict(const Reply&, StepContext&)> check;
  // Op scripts only: also record this step's own round trip (request sent -> reply or failure,
  // every attempt, whatever its verdict) in RunResult::steps under `name`, for the measured ops.
  // The op's latency (the whole script) is recorded as always.
  bool timed = false;
};

using Script = std::vector<Step>;

// Lock handoff (two connections per key, roles alternate): `acquire` takes the lock once at the
// start; `wait` is B's request (a long-poll acquire that returns on grant, or a poll retried every
// retry interval when `poll`); `release` is A's. The recorded latency is from sending A's release
// to receiving B's grant.
struct HandoffSpec {
  Step acquire;
  Step wait;
  Step release;
  bool poll = false;
};

struct WorkloadSpec {
  std::string name;
  Protocol protocol = Protocol::kHttp;
  Script setup;     // once per connection before the clock starts; captures go to conn vars
  Script op;        // the measured operation
  Script teardown;  // best effort after the run (e.g. revoke the lease)
  // Conflict handling: when true, a conflicting attempt is retried after retry_interval until it
  // succeeds or op_timeout passes (what Redlock/etcd clients do); the op's latency covers all
  // attempts. When false, the op ends as a conflict.
  bool retry_on_conflict = false;
  std::chrono::milliseconds retry_interval{50};
  std::chrono::milliseconds op_timeout{10'000};
  std::optional<HandoffSpec> handoff;  // set: the engine runs connection pairs instead of ops
  uint16_t default_port = 80;
};

struct WorkloadOptions {
  std::string path = "/healthz";  // http-get
  int64_t wait_ms = 0;            // dlock acquire wait (contended runs); handoff uses >= 30 s
  int64_t retry_ms = 50;          // redis/etcd conflict retry and redis-handoff poll interval
  int64_t ttl_ms = 10'000;        // redis lock TTL (PX)
  int64_t lease_ttl_ms = 60'000;  // dlock/etcd lease TTL; the engine raises it to cover the run
  int64_t op_timeout_ms = 10'000;
  int64_t rl_rate = 1'000'000;   // redis-token-bucket: tokens per second
  int64_t rl_burst = 1'000'000;  // redis-token-bucket: bucket capacity
  int64_t event = 0;             // ticketing-book: the event id (required)
  int64_t seats = 0;             // ticketing-book: use the event's first N seats (0: all)
  int64_t hot = 0;               // ticketing-book: every op picks among the first K (0: all)
  uint64_t seed = 1;             // the run's seed, for workloads that draw their own choices
};

// Builds the named built-in workload; kInvalidArgument for an unknown name or bad options.
Result<WorkloadSpec> make_workload(std::string_view name, const WorkloadOptions& opts);
std::vector<std::string> workload_names();
std::string workload_help();  // one paragraph per workload, for --help

// Helpers shared by workload files (public for tests).
std::string base64_encode(std::string_view in);
std::string json_escape(std::string_view s);  // quoted JSON string
// Parses body as JSON and returns the field as text (strings unquoted, numbers as written);
// nullopt if the body is not a JSON object or the field is absent.
std::optional<std::string> json_field(std::string_view body, std::string_view field);

}  // namespace sd::loadgen
