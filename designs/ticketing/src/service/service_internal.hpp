#pragma once
// TicketingService internals shared by service.cpp (lifecycle, periodic jobs, waiting rooms, live
// streams) and service_routes.cpp (request parsing and handlers).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/ratelimit/limiter.hpp"
#include "sd/ticketing/service.hpp"
#include "service_json.hpp"
#include "sse_hub.hpp"

namespace sd::ticketing {

struct TicketingService::Impl {
  using json = nlohmann::json;
  using Work = std::function<net::Response()>;

  Impl(BookingService& b, IdempotencyStore& i, const Clock& c, IdGenerator& g, metrics::Registry& m,
       Executor e, Scheduler s, ServiceOptions o);

  int64_t now_ms() const { return booking.now_ms(); }

  // ---- running work (service.cpp) ----
  // Runs work on the executor and answers its response through out (500 if it throws).
  void offload(net::Responder out, Work work);
  // The Idempotency-Key protocol around work (on the executor): replay, 422, 409 in use, or run
  // and store. key == nullptr: just work().
  net::Response idempotent(const std::string* key, const std::string& customer,
                           const std::string& request_text, const Work& work);

  // ---- waiting rooms (service.cpp) ----
  WaitingRoom* room_for(EventId event);  // blocking (reads the event once); nullptr: none
  // The room holding `ticket` and its status; nullopt if no room knows it.
  struct Found {
    EventId event = 0;
    WaitingRoom* room = nullptr;
    QueueStatus status;
  };
  std::optional<Found> find_ticket(const std::string& ticket);
  std::vector<std::pair<EventId, WaitingRoom*>> rooms_snapshot();

  // ---- live streams (service.cpp) ----
  bool streams_full() const;
  // Sends the ticket's status to the watch if it changed or a second passed (or force); closes
  // the stream once the shopper is admitted, expired, left or forgotten. Returns false if closed.
  bool push_status(QueueHub::Watch& w, const QueueStatus& st, bool force);

  // ---- periodic jobs (service.cpp) ----
  struct Job {
    const char* name;
    Duration interval;
    bool blocking;  // runs on the executor (DB / provider calls), else on the timer's thread
    std::function<void()> run;
    net::TimerHandle timer;  // guarded by jobs_mu
  };
  void arm(Job& job);
  void fire(Job& job);
  void sweep();
  void queue_tick();
  void reconcile();
  void purge_idempotency();
  void start();
  void shutdown();

  BookingService& booking;
  IdempotencyStore& idempotency;
  const Clock& clock;
  IdGenerator& ids;
  metrics::Registry& registry;
  Executor executor;
  Scheduler scheduler;
  const ServiceOptions options;

  std::shared_ptr<SeatHub> seat_hub = std::make_shared<SeatHub>();
  std::shared_ptr<QueueHub> queue_hub = std::make_shared<QueueHub>();

  // Per (event, customer) hold-attempt limit; null when options.holds_per_minute is 0.
  std::mutex hold_limit_mu;
  std::unique_ptr<ratelimit::Limiter> hold_limiter;  // guarded by hold_limit_mu
  // 429 "rate_limited" when this customer's hold attempts for the event are over the limit.
  std::optional<net::Response> limit_hold(EventId event, const std::string& customer);

  std::mutex rooms_mu;
  std::map<EventId, std::unique_ptr<WaitingRoom>> rooms;  // guarded by rooms_mu; never erased
  std::set<EventId> roomless;                             // guarded by rooms_mu
  // The admission counters of each room at the last queue tick: while they stand still, queue
  // positions do too, and watched tickets need only the once-a-second refresh.
  std::map<EventId, uint64_t> room_moves;  // touched by queue_tick only

  std::mutex jobs_mu;
  std::vector<std::unique_ptr<Job>>
      jobs;              // built in the constructor; the timers guarded by jobs_mu
  bool started = false;  // guarded by jobs_mu
  bool stopped = false;  // guarded by jobs_mu

  // ---- metrics ----
  metrics::Counter& holds_expired;
  metrics::Counter& replays;
  metrics::Counter& reconcile_captured;
  metrics::Counter& reconcile_voided;
  metrics::Counter& reconcile_refunded;
  metrics::Gauge& seat_streams;
  metrics::Gauge& queue_streams;
  metrics::Histogram& hold_latency;
  metrics::Histogram& pay_latency;
  // Booking outcomes by operation and result ("ok" or the error code).
  void count(const char* op, std::string_view result);
  void job_error(const char* job, const Status& st);
};

// Request parsing helpers (service_routes.cpp uses them; tests do not).
namespace service_detail {
// Customer ids: 1..128 bytes of [A-Za-z0-9._@-] (BookingService's rule, applied to queue joins).
Status validate_customer(const std::string& customer);
// A positive decimal id from a path segment.
Result<int64_t> parse_id(const std::string& text, const char* what);
std::string dump(const nlohmann::json& j);  // invalid UTF-8 replaced, never throws
}  // namespace service_detail

}  // namespace sd::ticketing
