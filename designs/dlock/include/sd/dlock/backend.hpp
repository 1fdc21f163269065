#pragma once
// Backend: one connection to a lock engine, selected by URI. Everything above it (Session, Mutex,
// the CLI, other designs) is engine-agnostic. Implementations are thread-safe.
//
// URIs: memory://              in-process core, nothing persisted
//       sqlite:///path/x.db     in-process core on an embedded SQLite file
//       sqlite://rel/x.db       (relative to the working directory)
//       dlockd://host:port      a dlockd server over HTTP
//       redis://host:port       one Redis: SET NX PX + Lua, per-lock token counter, pub/sub wake-up
//       redlock://h1:p1,...     the Redlock algorithm over N independent Redis masters; its tokens
//                               are best-effort only (not safe for fencing); no semaphores
//       etcd://h1:p1,...        etcd v3 via its JSON gateway: leases + the concurrency.Mutex
//                               algorithm; token = the key's create revision; TTLs whole seconds
// A malformed URI or an unknown scheme is kInvalidArgument. What a backend cannot do is
// kUnimplemented with "not supported" in the message.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/dlock/types.hpp"

namespace sd::dlock {

struct LeaseGrant {
  LeaseId id;
  Duration ttl{0};
};

// A parsed backend URI.
struct BackendUri {
  std::string scheme;                                   // "memory", "sqlite", "dlockd", ...
  std::string path;                                     // sqlite: file path (may be relative)
  std::vector<std::pair<std::string, uint16_t>> hosts;  // dlockd: one; redlock/etcd: several
};

// Parses and validates a URI (see above). Errors are kInvalidArgument with a clear message.
Result<BackendUri> parse_backend_uri(std::string_view uri);

struct BackendOptions {
  // Transport retries (dlockd): attempts and exponential backoff with jitter, for idempotent calls.
  int max_attempts = 4;
  Duration initial_backoff{50};
  Duration max_backoff{1'000};
  Duration request_timeout{5'000};  // per HTTP call, on top of any wait
  Duration lock_delay{0};           // in-process engines only
  const Clock* clock = nullptr;     // in-process engines only; nullptr = system clock
  // redis://: how often a waiter re-tries when no release message arrived (a holder's lease can
  // expire without any publish).
  Duration fallback_poll{100};
  // redlock://: the per-instance timeout of each parallel round (capped by request_timeout); far
  // below the TTL, so a dead instance costs little of the lock's validity.
  Duration instance_timeout{50};
  // Longest wait the engine accepts per acquire call (dlockd caps at 5 min); longer waits are split
  // into several calls.
  Duration max_wait_per_call{300'000};
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<LeaseGrant> grant_lease(Duration ttl) = 0;
  virtual Status keepalive(const LeaseId& id) = 0;  // kNotFound once expired/unknown
  virtual Status revoke(const LeaseId& id) = 0;
  // Blocks up to req.wait. kConflict "locked" if not granted in time; kNotFound if the lease is
  // gone.
  virtual Result<Grant> acquire(const AcquireRequest& req) = 0;
  virtual Status release(Kind kind, const std::string& name, const LeaseId& lease, Token token) = 0;
  virtual Result<LockInfo> describe(Kind kind, const std::string& name) = 0;
  virtual Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) = 0;
  virtual std::string uri() const = 0;
};

// Waits longer than options.max_wait_per_call are split into consecutive calls (the caller's place
// in the FIFO queue is lost between chunks, for an instant, every 5 minutes). Used by the backends.
Result<Grant> acquire_chunked(const AcquireRequest& req, Duration max_wait_per_call,
                              const std::function<Result<Grant>(const AcquireRequest&)>& call);

Result<std::shared_ptr<Backend>> open_backend(std::string_view uri, BackendOptions options = {});

}  // namespace sd::dlock
