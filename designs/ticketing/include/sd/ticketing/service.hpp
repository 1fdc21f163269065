#pragma once
// TicketingService: the HTTP API and web UI of ticketd, over a BookingService. Sans-io: blocking
// booking calls run on an injected Executor (a worker pool in ticketd, inline in tests), timers
// come from an injected Scheduler, so tests drive it through net::Router::dispatch.
//
//   GET  /v1/events                          events with availability
//   GET  /v1/events/{id}                     event, venue, price tiers
//   GET  /v1/events/{id}/seats               the seat map: every seat with state and version
//   GET  /v1/events/{id}/seats/stream        SSE: "snapshot" (all seats) then "seat" deltas
//   POST /v1/events/{id}/holds               {"customer","seats":[ids],"ttl_s"?} -> 201 hold
//   GET  /v1/holds/{id}
//   POST /v1/holds/{id}/pay                  {"customer","card"} -> 201 order | 402 | 409
//   POST /v1/holds/{id}/cancel               {"customer"} -> 200 hold (cancelled)
//   GET  /v1/orders/{id}
//   POST /v1/orders/{id}/cancel              {"customer"} -> 200 order (cancelled, refunded)
//   POST /v1/events/{id}/queue               {"customer"} -> 200 queue status (join; idempotent)
//   GET  /v1/queue/{ticket}                  position, state, ETA
//   GET  /v1/queue/{ticket}/stream           SSE: "status" events until admitted/expired
//   POST /v1/queue/{ticket}/leave
//   GET  /v1/strategy                        the strategy in use and its counters
//   GET  /  /events/{id}  /static/{file}     the web UI (seat map, hold & pay, waiting room)
//
// POSTs that change state accept an Idempotency-Key header (Stripe semantics, idempotency.hpp);
// a replayed response carries Idempotent-Replayed: true. Holds on a waiting-room event need the
// shopper's active queue ticket in X-Queue-Ticket (403 "not_admitted" otherwise). Errors are
// {"error","message"} with 400/402/403/404/409/413/422/429/503.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/net/server.hpp"
#include "sd/net/sse.hpp"
#include "sd/ticketing/booking.hpp"
#include "sd/ticketing/idempotency.hpp"
#include "sd/ticketing/waiting_room.hpp"

namespace sd::ticketing {

struct ServiceOptions {
  size_t max_body_bytes = 64 << 10;  // larger -> 413
  Duration sweep_interval{1'000};    // expire_due() period: the bound on holding past expiry
  Duration queue_tick{100};          // waiting-room admission period
  Duration reconcile_interval{30'000};
  WaitingRoomOptions waiting_room;  // for every event with waiting_room = true
  IdempotencyOptions idempotency;
  net::EventStreamOptions streams;
  size_t max_streams = 10'000;  // open SSE streams; beyond -> 503
  bool ui = true;               // serve the web UI
  // Hold attempts per customer and event per minute (a token bucket from the rate limiter's
  // algorithms, burst = the same number); beyond: 429 "rate_limited" with Retry-After. Flash-sale
  // bots retry holds in a loop; this answers them before they reach the seat locks. 0: no limit.
  uint32_t holds_per_minute = 0;
};

class TicketingService {
 public:
  // Runs blocking work off the I/O threads (ticketd: a worker pool; tests: inline).
  using Executor = std::function<void(std::function<void()>)>;
  // Runs fn once after delay (HttpServer::run_after in ticketd; ManualTimers in tests).
  using Scheduler =
      std::function<net::TimerHandle(std::chrono::milliseconds, std::function<void()>)>;

  // Keeps references; all must outlive the service. Sets the booking service's seat listener.
  // `clock` (steady) drives the waiting rooms and stream refreshes; wall time (hold expiry in
  // catalog reads, idempotency keys) is the booking service's now_ms().
  TicketingService(BookingService& booking, IdempotencyStore& idempotency, const Clock& clock,
                   IdGenerator& ids, metrics::Registry& metrics, Executor executor,
                   Scheduler scheduler, ServiceOptions options = {});
  ~TicketingService();  // shutdown()
  TicketingService(const TicketingService&) = delete;
  TicketingService& operator=(const TicketingService&) = delete;

  void add_routes(net::Router& router);
  // The same routes resolving the service late (ticketd builds the server, which owns the metrics
  // registry and the timers, before the service). A null service answers 503.
  static void add_routes(net::Router& router, std::function<TicketingService*()> resolve);
  // Starts the periodic jobs (hold expiry, queue ticks, reconcile, idempotency purge).
  void start();
  // Stops the timers and closes every open stream; idempotent.
  void shutdown();

  // The waiting room of an event (created on first use); nullptr if the event has none.
  WaitingRoom* waiting_room(EventId event);

  struct Impl;  // service_internal.hpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::ticketing
