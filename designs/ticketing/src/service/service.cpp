// TicketingService: lifecycle, the periodic jobs (hold expiry, waiting-room ticks, reconcile,
// idempotency purge), waiting rooms per event, the live streams and the idempotency wrapper. The
// HTTP handlers are in service_routes.cpp.
#include "sd/ticketing/service.hpp"

#include <exception>
#include <utility>

#include "sd/base/log.hpp"
#include "service_internal.hpp"

namespace sd::ticketing {

using service_detail::dump;
using service_detail::error_response;
using service_detail::queue_json;

namespace {

constexpr Duration kPurgeInterval{3'600'000};
constexpr Duration kStatusRefresh{1'000};  // queue streams: at least one status per second

bool terminal(QueueState s) {
  return s != QueueState::kWaiting;  // admitted, expired or left: the stream's job is done
}

}  // namespace

namespace service_detail {

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace service_detail

TicketingService::Impl::Impl(BookingService& b, IdempotencyStore& i, const Clock& c, IdGenerator& g,
                             metrics::Registry& m, Executor e, Scheduler s, ServiceOptions o)
    : booking(b),
      idempotency(i),
      clock(c),
      ids(g),
      registry(m),
      executor(std::move(e)),
      scheduler(std::move(s)),
      options(std::move(o)),
      holds_expired(m.counter("ticketing_holds_expired_total",
                              "Holds released by the sweeper after their TTL.")),
      replays(m.counter("ticketing_idempotent_replays_total",
                        "Responses replayed for a repeated Idempotency-Key.")),
      reconcile_captured(m.counter("ticketing_reconcile_total",
                                   "Charges settled by reconcile(), by action.",
                                   {{"action", "captured"}})),
      reconcile_voided(m.counter("ticketing_reconcile_total",
                                 "Charges settled by reconcile(), by action.",
                                 {{"action", "voided"}})),
      reconcile_refunded(m.counter("ticketing_reconcile_total",
                                   "Charges settled by reconcile(), by action.",
                                   {{"action", "refunded"}})),
      seat_streams(m.gauge("ticketing_open_streams", "Open server-sent event streams, by kind.",
                           {{"kind", "seats"}})),
      queue_streams(m.gauge("ticketing_open_streams", "Open server-sent event streams, by kind.",
                            {{"kind", "queue"}})),
      hold_latency(m.histogram("ticketing_request_duration_seconds",
                               "Time to answer a booking request, by operation.",
                               {{"op", "hold"}})),
      pay_latency(m.histogram("ticketing_request_duration_seconds",
                              "Time to answer a booking request, by operation.", {{"op", "pay"}})) {
  auto job = [this](const char* name, Duration interval, bool blocking, void (Impl::*fn)()) {
    jobs.push_back(std::make_unique<Job>(
        Job{name, interval, blocking, [this, fn] { (this->*fn)(); }, net::TimerHandle()}));
  };
  if (options.holds_per_minute > 0) {
    hold_limiter = ratelimit::make_limiter(
        ratelimit::Algorithm::kTokenBucket,
        {options.holds_per_minute, std::chrono::minutes(1), options.holds_per_minute});
  }
  job("sweep", options.sweep_interval, true, &Impl::sweep);
  job("queue_tick", options.queue_tick, false, &Impl::queue_tick);
  job("reconcile", options.reconcile_interval, true, &Impl::reconcile);
  job("idempotency_purge", kPurgeInterval, true, &Impl::purge_idempotency);
}

void TicketingService::Impl::count(const char* op, std::string_view result) {
  registry
      .counter("ticketing_requests_total", "Booking requests answered, by operation and result.",
               {{"op", op}, {"result", std::string(result)}})
      .inc();
}

void TicketingService::Impl::job_error(const char* job, const Status& st) {
  registry.counter("ticketing_job_errors_total", "Periodic jobs that failed.", {{"job", job}})
      .inc();
  SD_LOG(kWarn) << "ticketing: " << job << " failed: " << st.to_string();
}

// ---- running work ---------------------------------------------------------------------------

void TicketingService::Impl::offload(net::Responder out, Work work) {
  // std::function needs a copyable callable; the Responder is move-only.
  auto o = std::make_shared<net::Responder>(std::move(out));
  executor([o, work = std::move(work)] {
    net::Response r;
    try {
      r = work();
    } catch (const std::exception& e) {
      r = net::Response::error(500, "internal", e.what());
    }
    o->send(std::move(r));
  });
}

net::Response TicketingService::Impl::idempotent(const std::string* key,
                                                 const std::string& customer,
                                                 const std::string& request_text,
                                                 const Work& work) {
  if (key == nullptr) return work();
  auto begun = idempotency.begin(customer, *key, request_text, now_ms());
  if (!begun) {
    if (begun.status().code() == Code::kInvalidArgument) {
      return net::Response::error(400, "invalid_idempotency_key", begun.status().message());
    }
    return error_response(begun.status());
  }
  switch (begun->outcome) {
    case IdempotencyStore::Outcome::kReplay: {
      replays.inc();
      net::Response r;
      r.status = begun->stored ? begun->stored->status : 500;
      r.body = begun->stored ? begun->stored->body : std::string();
      r.headers.emplace_back("Idempotent-Replayed", "true");
      return r;
    }
    case IdempotencyStore::Outcome::kMismatch:
      return net::Response::error(422, "idempotency_key_reused",
                                  "idempotency_key_reused: key '" + *key +
                                      "' was used with a different request (method, path or body)");
    case IdempotencyStore::Outcome::kInProgress:
      return net::Response::error(
          409, "idempotency_key_in_use",
          "idempotency_key_in_use: a request with key '" + *key + "' is still running; retry");
    case IdempotencyStore::Outcome::kProceed:
      break;
  }
  net::Response r;
  try {
    r = work();
  } catch (const std::exception& e) {
    r = net::Response::error(500, "internal", e.what());
  }
  // 5xx/429 free the key (the store decides); everything else is stored for replays.
  if (Status st = idempotency.finish(customer, *key, {r.status, r.body}, now_ms()); !st) {
    SD_LOG(kWarn) << "ticketing: storing the response for idempotency key failed: "
                  << st.to_string();
  }
  return r;
}

// ---- waiting rooms --------------------------------------------------------------------------

WaitingRoom* TicketingService::Impl::room_for(EventId event) {
  {
    std::lock_guard lock(rooms_mu);
    if (auto it = rooms.find(event); it != rooms.end()) return it->second.get();
    if (roomless.contains(event)) return nullptr;
  }
  auto e = booking.db().event(event, now_ms());
  if (!e) return nullptr;  // unknown (not cached: a later add_event may create it)
  std::lock_guard lock(rooms_mu);
  if (!e->waiting_room) {
    roomless.insert(event);
    return nullptr;
  }
  auto& slot = rooms[event];
  if (!slot) slot = std::make_unique<WaitingRoom>(clock, ids, options.waiting_room);
  return slot.get();
}

std::vector<std::pair<EventId, WaitingRoom*>> TicketingService::Impl::rooms_snapshot() {
  std::lock_guard lock(rooms_mu);
  std::vector<std::pair<EventId, WaitingRoom*>> out;
  out.reserve(rooms.size());
  for (const auto& [id, room] : rooms) out.emplace_back(id, room.get());
  return out;
}

std::optional<TicketingService::Impl::Found> TicketingService::Impl::find_ticket(
    const std::string& ticket) {
  // Few events have a waiting room; a room that does not know the ticket answers kNotFound
  // without counting it as a poll.
  for (const auto& [event, room] : rooms_snapshot()) {
    auto st = room->status(ticket);
    if (st) return Found{event, room, std::move(*st)};
  }
  return std::nullopt;
}

// ---- live streams ---------------------------------------------------------------------------

bool TicketingService::Impl::streams_full() const {
  return seat_hub->size() + queue_hub->size() >= options.max_streams;
}

bool TicketingService::Impl::push_status(QueueHub::Watch& w, const QueueStatus& st, bool force) {
  std::string data = dump(queue_json(st, w.event));
  bool done = terminal(st.state);
  {
    std::lock_guard lock(w.mu);
    TimePoint now = clock.now();
    if (force || done || data != w.last || now - w.last_sent >= kStatusRefresh) {
      if (!w.stream->send("status", data)) return false;
      w.last = std::move(data);
      w.last_sent = now;
    }
  }
  if (done) w.stream->close();  // outside w.mu: on_closed may run here and take the hub's lock
  return !done;
}

// ---- periodic jobs --------------------------------------------------------------------------

void TicketingService::Impl::arm(Job& job) {
  std::lock_guard lock(jobs_mu);
  if (stopped) return;
  job.timer = scheduler(job.interval, [this, &job] { fire(job); });
}

void TicketingService::Impl::fire(Job& job) {
  auto run = [this, &job] {
    {
      std::lock_guard lock(jobs_mu);
      if (stopped) return;
    }
    try {
      job.run();
    } catch (const std::exception& e) {
      job_error(job.name, internal_error(e.what()));
    }
    arm(job);  // the next run counts from the end of this one: runs never overlap
  };
  if (job.blocking) {
    executor(std::move(run));
  } else {
    run();
  }
}

void TicketingService::Impl::sweep() {
  if (hold_limiter) {
    std::lock_guard lock(hold_limit_mu);
    hold_limiter->evict_idle(clock.now());  // full buckets are fresh keys: forget them
  }
  auto n = booking.expire_due();
  if (!n) return job_error("sweep", n.status());
  if (*n > 0) holds_expired.inc(*n);
}

std::optional<net::Response> TicketingService::Impl::limit_hold(EventId event,
                                                                const std::string& customer) {
  if (!hold_limiter) return std::nullopt;
  ratelimit::Decision d;
  {
    std::lock_guard lock(hold_limit_mu);
    d = hold_limiter->decide(std::to_string(event) + "/" + customer, 1, clock.now());
  }
  if (d.allowed) return std::nullopt;
  const auto retry_s =
      std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(d.retry_after).count());
  net::Response r =
      net::Response::error(429, "rate_limited",
                           "rate_limited: at most " + std::to_string(options.holds_per_minute) +
                               " hold attempts per minute per shopper and event; retry in " +
                               std::to_string(retry_s) + " s");
  r.headers.emplace_back("Retry-After", std::to_string(retry_s));
  return r;
}

void TicketingService::Impl::queue_tick() {
  auto rooms_now = rooms_snapshot();
  std::map<EventId, bool> moved;
  for (const auto& [event, room] : rooms_now) {
    room->tick();
    WaitingRoomStats s = room->stats();
    uint64_t moves = s.joined + s.admitted + s.expired + s.abandoned + s.left;
    moved[event] = room_moves[event] != moves;
    room_moves[event] = moves;
    auto labels = metrics::Labels{{"event", std::to_string(event)}};
    registry.gauge("ticketing_queue_waiting", "Shoppers waiting in an event's queue.", labels)
        .set(static_cast<double>(s.waiting));
    registry.gauge("ticketing_queue_active", "Admitted shoppers of an event.", labels)
        .set(static_cast<double>(s.active));
  }
  TimePoint now = clock.now();
  for (const auto& w : queue_hub->all()) {
    bool due = moved[w->event];
    if (!due) {
      std::lock_guard lock(w->mu);
      due = now - w->last_sent >= kStatusRefresh;
    }
    if (!due) continue;
    WaitingRoom* room = nullptr;
    for (const auto& [event, r] : rooms_now) {
      if (event == w->event) room = r;
    }
    if (room == nullptr) continue;
    auto st = room->status(w->ticket);
    if (st) {
      push_status(*w, *st, false);
    } else {
      // Forgotten by the room (expired or left long ago): tell the client, end the stream.
      QueueStatus gone;
      gone.ticket = w->ticket;
      gone.state = QueueState::kExpired;
      push_status(*w, gone, true);
    }
  }
  seat_streams.set(static_cast<double>(seat_hub->size()));
  queue_streams.set(static_cast<double>(queue_hub->size()));
}

void TicketingService::Impl::reconcile() {
  auto r = booking.reconcile();
  if (!r) return job_error("reconcile", r.status());
  reconcile_captured.inc(r->captured);
  reconcile_voided.inc(r->voided);
  reconcile_refunded.inc(r->refunded);
  if (r->captured + r->voided + r->refunded > 0) {
    SD_LOG(kInfo) << "ticketing: reconcile captured " << r->captured << ", voided " << r->voided
                  << ", refunded " << r->refunded;
  }
}

void TicketingService::Impl::purge_idempotency() {
  auto n = idempotency.purge(now_ms());
  if (!n) job_error("idempotency_purge", n.status());
}

void TicketingService::Impl::start() {
  {
    std::lock_guard lock(jobs_mu);
    if (started || stopped) return;
    started = true;
  }
  for (auto& job : jobs) arm(*job);
}

void TicketingService::Impl::shutdown() {
  {
    std::lock_guard lock(jobs_mu);
    stopped = true;
    for (auto& job : jobs) job->timer.cancel();
  }
  seat_hub->close_all();
  queue_hub->close_all();
}

// ---- TicketingService -----------------------------------------------------------------------

TicketingService::TicketingService(BookingService& booking, IdempotencyStore& idempotency,
                                   const Clock& clock, IdGenerator& ids, metrics::Registry& metrics,
                                   Executor executor, Scheduler scheduler, ServiceOptions options)
    : impl_(std::make_unique<Impl>(booking, idempotency, clock, ids, metrics, std::move(executor),
                                   std::move(scheduler), std::move(options))) {
  booking.set_listener(
      [hub = impl_->seat_hub](EventId event, const std::vector<SeatChange>& changes) {
        hub->publish(event, changes);
      });
}

TicketingService::~TicketingService() {
  shutdown();
  // The listener holds the hub (shared), which outlives this service if a late change comes in.
}

void TicketingService::start() {
  impl_->start();
}

void TicketingService::shutdown() {
  impl_->shutdown();
}

WaitingRoom* TicketingService::waiting_room(EventId event) {
  return impl_->room_for(event);
}

}  // namespace sd::ticketing
