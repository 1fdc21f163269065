#pragma once
// RateLimitService: the HTTP API of ratelimitd (Request -> Response handlers over a RulesSource, a
// Store and a ConcurrencyLimiter). Sans-io: time comes from an injected Clock and delayed replies
// from an injected Scheduler, so tests drive it through net::Router::dispatch with a FakeClock.
//
//   POST /v1/check                 envoy-style descriptors -> 200 allowed / 429 denied (+ JSON)
//   GET|POST /v1/auth/{domain}     for nginx auth_request: descriptor from request headers
//                                  (?entries=key:Header,...[&cost=n][&deny_status=403]) -> 204 /
//                                  429 (or 403: nginx passes that through quietly), no body on 204
//   POST /v1/concurrency/acquire   one permit per matched concurrency rule, all or nothing
//   POST /v1/concurrency/release   {"permit": id}
//   GET  /v1/rules                 the loaded rules and their version
//   POST /v1/rules/reload          reload now (as SIGHUP); 400 with file:line, old rules kept
//
// Decisions answer RateLimit-Policy / RateLimit headers (IETF draft 08/09) for every non-shadow
// rate rule that matched, Retry-After on 429, X-RateLimit-* with legacy_headers. Choices:
// an unknown domain is 400 "unknown_domain" (envoy answers OK; a typo should be loud); shadow
// rules decide and count but never deny and do not appear in headers; a denied cost that the limit
// can never admit has "retry_after_ms": null and no Retry-After header.
// Store failures follow on_store_error: open -> allowed, statuses "STORE_ERROR", no rate headers;
// closed -> 429 {"error":"store_unavailable"} with Retry-After: 1.
//
// Threading: handlers run on any I/O thread; the Store, RulesSource and ConcurrencyLimiter are
// thread-safe; the service's own state (metrics cache, permits, delayed replies) has its mutexes.
// /v1/check and /v1/auth match rules on the I/O thread and answer from Store::decide_async's
// callback, so a redis:// store (batched, on its own threads) never blocks an I/O thread; a lock
// backend that does network I/O (dlockd://) still blocks the calling I/O thread for that call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/status.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/net/server.hpp"
#include "sd/ratelimit/concurrency.hpp"
#include "sd/ratelimit/rules_watch.hpp"
#include "sd/ratelimit/store.hpp"

namespace sd::ratelimit {

enum class StoreErrorPolicy { kOpen, kClosed };

struct ServiceOptions {
  StoreErrorPolicy on_store_error = StoreErrorPolicy::kOpen;
  bool legacy_headers = false;        // also X-RateLimit-Limit/-Remaining/-Reset
  Duration permit_ttl{60'000};        // unreleased concurrency permits are released after
  Duration maintain_interval{1'000};  // start(): how often maintain() runs
  // Request limits; beyond them 413 (body) or 400.
  size_t max_body_bytes = 256 << 10;
  size_t max_descriptors = 16;
  size_t max_entries = 8;        // per descriptor
  size_t max_entry_bytes = 256;  // each key and each value
  uint64_t max_cost = 1'000'000;
};

class RateLimitService {
 public:
  // Runs fn once after delay on some thread, never inline. Dropping or cancelling the handle
  // cancels it. Production: HttpServer::run_after; tests: a manual queue.
  using Scheduler =
      std::function<net::TimerHandle(std::chrono::milliseconds, std::function<void()>)>;
  // POST /v1/rules/reload calls this (RulesWatcher::reload in ratelimitd).
  using Reloader = std::function<Status()>;

  // Keeps references: everything passed must outlive the service. `concurrency` may be null
  // (then a matched concurrency rule answers 503).
  RateLimitService(RulesSource& rules, Store& store, ConcurrencyLimiter* concurrency,
                   const Clock& clock, metrics::Registry& metrics, Scheduler scheduler,
                   IdGenerator& ids, ServiceOptions options = {});
  ~RateLimitService();  // shutdown()
  RateLimitService(const RateLimitService&) = delete;
  RateLimitService& operator=(const RateLimitService&) = delete;

  void set_reloader(Reloader reloader);  // before requests arrive
  // Records a reload attempt's outcome in the metrics (RulesWatcher's on_reload callback).
  void record_reload(const Status& outcome);

  void register_routes(net::Router& router);
  // Same routes resolving the service late (ratelimitd builds the server, which owns the registry
  // and the timers, before the service). A null service answers 503.
  static void register_routes(net::Router& router, std::function<RateLimitService*()> resolve);

  // Arms a timer that calls maintain() every options.maintain_interval.
  void start();
  // Store housekeeping, releases concurrency permits older than permit_ttl, forgets delayed
  // replies that were sent.
  void maintain();
  // Waits for store calls in flight (each bounded by the store's timeout) and sends their replies,
  // cancels the timers, sends the delayed replies now, releases every permit. Idempotent; call
  // before the scheduler's owner goes away.
  void shutdown();

  size_t permits_held() const;     // permit ids handed out and not yet released
  size_t delayed_replies() const;  // /v1/auth answers waiting for their leaky-queue delay

  struct Routes;  // the handlers (service_routes.cpp)
  struct Impl;    // decisions, metrics cache, permits (service.cpp)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::ratelimit
