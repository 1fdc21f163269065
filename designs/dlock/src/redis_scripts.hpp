#pragma once
// Private to the client library: the Redis data model and Lua scripts shared by the redis:// and
// redlock:// backends (Redlock runs the same scripts on every instance).
//
// Keys (one Redis instance):
//   dlock:lease:<id>          string = ttl ms, PX ttl                         the lease
//   dlock:lease:<id>:holds    set of holder keys this lease holds, PX ttl
//   dlock:lock:<name>         exclusive: string "<lease>:<token>", PX = the lease's remaining TTL
//                             shared:    hash {<lease>: "1:<token>"}, PX = the longest holder lease
//   dlock:sem:<name>          hash {"=limit": limit, <lease>: "<permits>:<token>"}
//   dlock:token:<name>        fencing counter of lock <name> (dlock:sem-token:<name> for
//                             semaphores), INCRed inside the acquire script, never expires.
//                             Without AOF a restarted Redis starts it from 0 again: tokens repeat
//                             (a documented limit: run Redis with appendonly yes for safe tokens).
//   channel dlock:released:<name> (dlock:sem-released:<name>): PUBLISHed on every release/revoke.
// A hold counts only while its lease key exists: scripts prune holders whose lease vanished (hash
// fields do not expire on their own in Redis 7.0). Scripts touch keys not passed in KEYS (the
// lease's holds), so this needs a standalone Redis, not Redis Cluster.
// Scripts are sent with EVAL every time: Redis caches compiled scripts by the SHA1 of their body,
// so this costs one hash of ~1 KB and no NOSCRIPT round trips after a server restart.

#include <functional>
#include <string>
#include <vector>

#include "sd/dlock/types.hpp"
#include "sd/redis/conn.hpp"

namespace sd::dlock {
// The connection layer is common/redis; the dlock backends name its types unqualified.
using ::sd::redis::redis_exchange;
using ::sd::redis::RedisAddr;
using ::sd::redis::RedisArgv;
using ::sd::redis::RedisConn;
using ::sd::redis::RedisPool;
using ::sd::redis::RedisValue;
}  // namespace sd::dlock

namespace sd::dlock::redis {

inline const Limits kLimits{};  // the same bounds dlockd's core enforces

std::string lease_key(const LeaseId& id);
std::string holder_key(Kind kind, const std::string& name);
std::string counter_key(Kind kind, const std::string& name);
std::string released_channel(Kind kind, const std::string& name);
// SCAN MATCH pattern for the counters of names starting with `prefix` (glob-escaped).
std::string counter_pattern(Kind kind, const std::string& prefix);
// The name of a counter key found by SCAN ("" if it is not one of `kind`).
std::string name_of_counter(Kind kind, const std::string& key);

// Most names list() collects and describes.
inline constexpr size_t kListLimit = 100000;
// Appends the names of `kind` starting with `prefix` that have a token counter on this instance
// (every name ever granted, like the core's idle names). kUnavailable / kInternal on failure.
Status scan_names(RedisPool& pool, Kind kind, const std::string& prefix,
                  std::vector<std::string>& names);
// Sorts and dedups `names`, then describes each (a name deleted meanwhile is skipped).
Result<std::vector<LockInfo>> describe_names(
    std::vector<std::string> names,
    const std::function<Result<LockInfo>(const std::string&)>& describe);

Status validate_ttl(Duration ttl);
Status validate_acquire(const AcquireRequest& req);

// SET dlock:lease:<id> <ttl> PX <ttl> NX -> "OK" (nil: id collision).
RedisArgv grant_lease_argv(const LeaseId& id, Duration ttl);
RedisArgv keepalive_argv(const LeaseId& id);
RedisArgv revoke_argv(const LeaseId& id);
RedisArgv acquire_argv(const AcquireRequest& req);
// exact_token: the stored token must equal `token` (redis://); otherwise it must be <= `token`
// (redlock://, whose token is the max over instances that each count on their own).
RedisArgv release_argv(Kind kind, const std::string& name, const LeaseId& lease, Token token,
                       bool exact_token);
RedisArgv describe_argv(Kind kind, const std::string& name);

struct ScriptGrant {
  Token token = 0;
  long long lease_ttl_ms = 0;  // what was left of the lease when granted (the hold's TTL)
  bool fresh = false;          // newly granted (false: the lease already held it)
};
// Maps script replies to values or the Status codes the other backends use: "lease not found or
// expired" (kNotFound), "locked" / "not_holder" / "mode_mismatch" / ... (kConflict).
Result<ScriptGrant> parse_acquire(const RedisValue& v);
Status parse_release(const RedisValue& v);
Status parse_lease_op(const RedisValue& v);  // keepalive and revoke
// kNotFound "<kind> not found" when the name has neither holders nor a counter.
Result<LockInfo> parse_describe(Kind kind, const std::string& name, const RedisValue& v);

}  // namespace sd::dlock::redis
