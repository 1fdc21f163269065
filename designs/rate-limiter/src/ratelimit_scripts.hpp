#pragma once
// Private to the store library: the Redis data model of the redis:// store and its Lua scripts,
// one per algorithm, each a line-by-line port of the algorithm's step() in src/<algorithm>.cpp
// (same double operations in the same order, so equal inputs give bit-identical decisions; the
// store tests replay traces through both to prove it).
//
// Keys: <prefix><algorithm>:<P>:<R>:<B>:<Match::key>, P = period in µs, B = effective burst (0 for
// window algorithms), so a changed limit or algorithm starts fresh state. Values are strings of
// doubles printed with %.17g (exact round trip), the smallest Redis encoding:
//   token_bucket   "<tokens> <last_us>"        leaky_bucket   "<level> <last_us>"
//   leaky_queue    "<free_at_us>"              gcra           "<tat_us>"
//   fixed_window   "<w> <count>"               sliding_window "<w> <cur> <prev>"
//   sliding_log    sorted set, score = admission µs, member "<t_us>:<units>" (one member per
//                  microsecond: same-µs admissions merge, as in memory), plus
//                  <prefix>sliding_log#sum:<P>:<R>:0:<key> = the units in the set (an integer),
//                  so a decision is O(log n) instead of summing the whole log.
// A key is written only when a decision admits (cost > 0), with PEXPIRE = the time until its
// state is indistinguishable from a fresh key (the decision's reset_after) + kTtlMarginMs, so
// idle keys vanish. Standalone Redis only (sliding_log touches two keys of different slots).
//
// Script arguments: ARGV = t_us ("" = use Redis TIME), P, R, B, cost. Reply: {allowed (0/1),
// remaining, reset_after_us, retry_after_us or "never", delay_us}, numbers as %.17g strings
// before rounding (Lua numbers returned to Redis would be truncated), rounded here exactly like
// the in-memory limiters round theirs.

#include <optional>
#include <string>
#include <string_view>

#include "sd/base/status.hpp"
#include "sd/ratelimit/store.hpp"
#include "sd/redis/conn.hpp"

namespace sd::ratelimit::detail {

inline constexpr long long kTtlMarginMs = 100;

// The script of algorithm `a` (static; its SHA1 is cached once loaded).
const redis::RedisScript& script_for(Algorithm a);

// The EVALSHA call deciding `item`; t_us = client time (nullopt: the script reads Redis TIME).
redis::ScriptCall decide_call(std::string_view prefix, const StoreItem& item,
                              std::optional<double> t_us);

// The state key of an item (sliding_log: its sorted set) and, for sliding_log, the sum key.
std::string state_key(std::string_view prefix, const StoreItem& item);
std::string sum_key(std::string_view prefix, const StoreItem& item);

// A script reply as a Decision (limit filled in, cost 0 reported as allowed); kInternal for a
// malformed reply or a script error.
Result<Decision> parse_decision(const redis::RedisAddr& addr, const StoreItem& item,
                                const redis::RedisValue& v);

}  // namespace sd::ratelimit::detail
