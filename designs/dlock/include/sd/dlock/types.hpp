#pragma once
// Vocabulary of the lock service, shared by the core, the store, the HTTP service and the clients.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/status.hpp"

namespace sd::dlock {

using LeaseId = std::string;  // 32 hex chars, unguessable
using Token = uint64_t;  // fencing token: strictly increasing, never reused (also across restarts)
using WaiterId = uint64_t;

enum class Kind { kLock, kSemaphore };    // separate namespaces: lock "a" and semaphore "a" differ
enum class Mode { kExclusive, kShared };  // for locks; semaphore holders are always kShared

std::string_view kind_name(Kind k);  // "lock" | "semaphore"
std::string_view mode_name(Mode m);  // "exclusive" | "shared"
std::optional<Mode> parse_mode(std::string_view s);

// Validates a lock/semaphore name: 1..max_bytes bytes of valid UTF-8 with no control characters.
Status validate_name(std::string_view name, size_t max_bytes);

struct Limits {
  Duration min_ttl{10};
  Duration max_ttl{3'600'000};  // 1 h
  Duration max_wait{300'000};   // 5 min per acquire call
  size_t max_name_bytes = 256;
  uint32_t max_semaphore_limit = 1'000'000;
  size_t max_leases = 1'000'000;
  size_t max_waiters_per_name = 10'000;
  size_t max_holds_per_lease = 10'000;
};

struct AcquireRequest {
  Kind kind = Kind::kLock;
  std::string name;
  LeaseId lease_id;
  Mode mode = Mode::kExclusive;  // locks only
  uint32_t limit = 1;            // semaphores: capacity; must match the current holders' limit
  uint32_t permits = 1;          // semaphores: 1..limit
  Duration wait{0};              // 0: try-lock; >0: queue FIFO for at most this long
};

// Validates an acquire request's shape against limits (name, kind, mode, semaphore limit and
// permits, 0 <= wait <= max_wait); kInvalidArgument naming the field. Lease checks are the
// engine's.
Status validate_acquire(const AcquireRequest& req, const Limits& limits);

struct Grant {
  Kind kind = Kind::kLock;
  std::string name;
  LeaseId lease_id;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  Token token = 0;
};

struct HolderInfo {
  LeaseId lease_id;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  Token token = 0;
  long long ttl_ms_left = 0;  // of the holder's lease
};

struct WaiterInfo {
  LeaseId lease_id;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  long long wait_ms_left = 0;
};

struct LockInfo {
  Kind kind = Kind::kLock;
  std::string name;
  uint32_t limit = 1;  // semaphores
  std::vector<HolderInfo> holders;
  std::vector<WaiterInfo> waiters;   // FIFO order
  Token last_token = 0;              // last token granted for this name (0: none)
  long long lock_delay_ms_left = 0;  // >0: no grants until then (holder's lease expired)
};

struct LeaseInfo {
  LeaseId id;
  Duration ttl{0};
  long long ttl_ms_left = 0;
  size_t holds = 0;
};

}  // namespace sd::dlock
