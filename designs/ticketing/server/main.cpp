// ticketd: the ticketing service. Thin: parse flags, open the database (migrate, seed), the payment
// provider's ledger and the lock backend, reconcile what a crash left behind, build the booking
// and HTTP services, serve until SIGINT/SIGTERM.
//
// State (--state-dir, default ./var/ticketing): ticketing.db (seats, holds, orders, idempotency
// keys), payments.db (the simulated provider's ledger: a separate "remote" system) and, for the
// dlock strategy, locks.db (sqlite:// lock backend: fencing tokens must survive restarts).
//
// Exit codes: 0 clean shutdown (or --help), 1 runtime failure (database, bind), 2 bad
// configuration (flags, URIs).

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "../src/service/worker_pool.hpp"
#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/log.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/net/server.hpp"
#include "sd/net/signals.hpp"
#include "sd/ticketing/booking.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/idempotency.hpp"
#include "sd/ticketing/payments.hpp"
#include "sd/ticketing/service.hpp"
#include "sd/ticketing/strategy.hpp"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

// "min" or "min,max" (milliseconds, 0 <= min <= max <= 60000).
bool parse_latency(const std::string& text, int64_t& min, int64_t& max) {
  try {
    size_t comma = text.find(',');
    size_t used = 0;
    min = std::stoll(text.substr(0, comma), &used);
    if (used != (comma == std::string::npos ? text.size() : comma)) return false;
    max = min;
    if (comma != std::string::npos) {
      std::string rest = text.substr(comma + 1);
      max = std::stoll(rest, &used);
      if (used != rest.size()) return false;
    }
  } catch (const std::exception&) {
    return false;
  }
  return min >= 0 && max >= min && max <= 60'000;
}

// A venue of n seats (rows of 50, the rest in a last row) and one event at it, for benchmarks;
// found by name if an earlier run created it. Returns the event id.
sd::Result<sd::ticketing::EventId> bench_event(sd::ticketing::TicketDb& db, int n, int64_t now) {
  const std::string venue = "Bench Venue " + std::to_string(n);
  const std::string name = "Bench " + std::to_string(n) + " seats";
  auto events = db.events(now);
  if (!events) return events.status();
  for (const auto& e : *events) {
    if (e.name == name && e.venue_name == venue) return e.id;
  }
  sd::ticketing::VenueSpec spec;
  spec.name = venue;
  if (n / 50 > 0) spec.sections.push_back({"Bench", "standard", 5'000, n / 50, 50});
  if (n % 50 > 0) spec.sections.push_back({"Bench Extra", "standard", 5'000, 1, n % 50});
  auto venue_id = db.add_venue(spec);
  if (!venue_id) return venue_id.status();
  return db.add_event(*venue_id, name, now + 30LL * 24 * 3600 * 1000, false);
}

}  // namespace

int main(int argc, char** argv) {
  sd::net::block_stop_signals();  // before any thread starts (see signals.hpp)

  CLI::App app{"ticketd: ticketing service (seat holds, payments, waiting room, live seat map)"};
  std::string host = "127.0.0.1";
  int port = 7403;
  std::string state_dir = "./var/ticketing";
  std::string db_path;
  std::string strategy = "dlock";
  std::string lock_uri;
  int64_t hold_ttl_s = 600;
  int threads = 2;
  int workers = 16;
  std::string payment_latency = "0";
  double decline_rate = 0;
  double error_rate = 0;
  uint64_t payment_seed = 1;
  long long sweep_ms = 1000;
  long long reconcile_ms = 30'000;
  long long orphan_ms = 30'000;
  size_t queue_max_active = 100;
  double queue_rate = 10;
  double queue_burst = 10;
  bool seed_demo = true;
  int bench_venue = 0;
  size_t max_body_bytes = 64 << 10;
  size_t max_streams = 10'000;
  uint32_t holds_per_minute = 0;
  size_t stream_buffer_bytes = 4 << 20;

  auto env = [](const char* name) { return std::string("TICKETD_") + name; };
  app.add_option("--host", host, "Address to bind")->envname(env("HOST"))->capture_default_str();
  app.add_option("--port", port, "Port to bind (0: any free port)")
      ->envname(env("PORT"))
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--state-dir", state_dir,
                 "Directory for ticketing.db, payments.db and (dlock) locks.db")
      ->envname(env("STATE_DIR"))
      ->capture_default_str();
  app.add_option("--db", db_path, "The ticketing database (default <state-dir>/ticketing.db)")
      ->envname(env("DB"));
  app.add_option("--strategy", strategy, "Double-booking guard: dlock | conditional | optimistic")
      ->envname(env("STRATEGY"))
      ->check(CLI::IsMember({"dlock", "conditional", "optimistic"}))
      ->capture_default_str();
  app.add_option("--lock-uri", lock_uri,
                 "dlock backend for --strategy dlock (default sqlite://<state-dir>/locks.db; "
                 "memory:// tokens restart at 1 and would be fenced out after a restart)")
      ->envname(env("LOCK_URI"));
  app.add_option("--hold-ttl-s", hold_ttl_s, "Default hold TTL in seconds")
      ->envname(env("HOLD_TTL_S"))
      ->check(CLI::Range(int64_t{1}, int64_t{24 * 3600}))
      ->capture_default_str();
  app.add_option("--threads", threads, "HTTP I/O threads")
      ->envname(env("THREADS"))
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--workers", workers,
                 "Worker threads for blocking booking calls (database, payments, locks)")
      ->envname(env("WORKERS"))
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--payment-latency-ms", payment_latency,
                 "Simulated provider latency per call: min[,max] milliseconds")
      ->envname(env("PAYMENT_LATENCY_MS"))
      ->capture_default_str();
  app.add_option("--payment-decline-rate", decline_rate, "Fraction of authorizations declined")
      ->envname(env("PAYMENT_DECLINE_RATE"))
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--payment-error-rate", error_rate,
                 "Fraction of provider calls failing (half of them after recording)")
      ->envname(env("PAYMENT_ERROR_RATE"))
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--payment-seed", payment_seed, "Seed of the simulated provider's randomness")
      ->envname(env("PAYMENT_SEED"))
      ->capture_default_str();
  app.add_option("--sweep-ms", sweep_ms, "How often expired holds are released")
      ->envname(env("SWEEP_MS"))
      ->check(CLI::Range(10LL, 3'600'000LL))
      ->capture_default_str();
  app.add_option("--reconcile-ms", reconcile_ms,
                 "How often the payment ledger is reconciled with the orders")
      ->envname(env("RECONCILE_MS"))
      ->check(CLI::Range(100LL, 86'400'000LL))
      ->capture_default_str();
  app.add_option("--orphan-authorization-ms", orphan_ms,
                 "Reconcile voids authorizations without a confirmed order older than this")
      ->envname(env("ORPHAN_AUTHORIZATION_MS"))
      ->check(CLI::Range(0LL, 86'400'000LL))
      ->capture_default_str();
  app.add_option("--queue-max-active", queue_max_active,
                 "Waiting room: shoppers admitted at once per event")
      ->envname(env("QUEUE_MAX_ACTIVE"))
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--queue-rate", queue_rate, "Waiting room: admissions per second")
      ->envname(env("QUEUE_RATE"))
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  app.add_option("--queue-burst", queue_burst, "Waiting room: admission burst")
      ->envname(env("QUEUE_BURST"))
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_flag("--seed-demo,!--no-seed", seed_demo,
               "Seed the demo venue and events into an empty database (default on)")
      ->envname(env("SEED_DEMO"));
  app.add_option("--bench-venue", bench_venue,
                 "Also add a venue and event with N seats for benchmarks (idempotent by name); "
                 "prints its event id")
      ->envname(env("BENCH_VENUE"))
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--max-body-bytes", max_body_bytes, "Larger request bodies get 413")
      ->envname(env("MAX_BODY_BYTES"))
      ->check(CLI::Range(size_t{256}, size_t{16} << 20))
      ->capture_default_str();
  app.add_option("--holds-per-minute", holds_per_minute,
                 "Hold attempts per shopper and event per minute, beyond: 429 (0: no limit)")
      ->envname(env("HOLDS_PER_MINUTE"))
      ->check(CLI::Range(uint32_t{0}, uint32_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--max-streams", max_streams,
                 "Open event streams (seat maps, queues); beyond: 503")
      ->envname(env("MAX_STREAMS"))
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--stream-buffer-bytes", stream_buffer_bytes,
                 "A stream client this far behind is dropped; must hold a whole seat-map snapshot "
                 "(~130 bytes per seat)")
      ->envname(env("STREAM_BUFFER_BYTES"))
      ->check(CLI::Range(size_t{64} << 10, size_t{1} << 30))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitConfig;
  }

  namespace tk = sd::ticketing;
  namespace fs = std::filesystem;
  int64_t latency_min = 0, latency_max = 0;
  if (!parse_latency(payment_latency, latency_min, latency_max)) {
    std::cerr << "ticketd: --payment-latency-ms: expected min[,max] in 0..60000, got '"
              << payment_latency << "'\n";
    return kExitConfig;
  }
  auto kind = tk::parse_strategy(strategy);
  if (!kind) {
    std::cerr << "ticketd: --strategy: " << kind.status().message() << "\n";
    return kExitConfig;
  }
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  const fs::path state = fs::absolute(state_dir, ec);
  if (ec) {
    std::cerr << "ticketd: --state-dir " << state_dir << ": " << ec.message() << "\n";
    return kExitRuntime;
  }
  if (db_path.empty()) db_path = (state / "ticketing.db").string();
  if (lock_uri.empty()) lock_uri = "sqlite://" + (state / "locks.db").string();

  tk::NowMs now = tk::system_now_ms();
  auto db = tk::TicketDb::open({.path = db_path});
  if (!db) {
    std::cerr << "ticketd: cannot open " << db_path << ": " << db.status().to_string() << "\n";
    return kExitRuntime;
  }
  if (seed_demo) {
    if (sd::Status st = (*db)->seed_demo(now()); !st) {
      std::cerr << "ticketd: seeding the demo events failed: " << st.to_string() << "\n";
      return kExitRuntime;
    }
  }
  if (bench_venue > 0) {
    auto id = bench_event(**db, bench_venue, now());
    if (!id) {
      std::cerr << "ticketd: --bench-venue: " << id.status().to_string() << "\n";
      return kExitRuntime;
    }
    std::cout << "ticketd: bench event " << *id << " (" << bench_venue << " seats)" << std::endl;
  }

  tk::PaymentOptions payment_options;
  payment_options.ledger_path = (state / "payments.db").string();
  payment_options.min_latency_ms = latency_min;
  payment_options.max_latency_ms = latency_max;
  payment_options.decline_rate = decline_rate;
  payment_options.error_rate = error_rate;
  payment_options.seed = payment_seed;
  auto payments = tk::SimulatedPayments::open(payment_options, now);
  if (!payments) {
    std::cerr << "ticketd: cannot open the payment ledger " << payment_options.ledger_path << ": "
              << payments.status().to_string() << "\n";
    return kExitRuntime;
  }

  std::shared_ptr<sd::dlock::Backend> backend;
  if (*kind == tk::StrategyKind::kDlock) {
    auto b = sd::dlock::open_backend(lock_uri);
    if (!b) {
      std::cerr << "ticketd: --lock-uri: " << b.status().message() << "\n";
      return b.status().code() == sd::Code::kInvalidArgument ? kExitConfig : kExitRuntime;
    }
    backend = *b;
  }
  auto seat_strategy = tk::make_strategy(*kind, **db, backend);
  if (!seat_strategy) {
    std::cerr << "ticketd: --strategy " << strategy << ": " << seat_strategy.status().to_string()
              << "\n";
    return kExitRuntime;
  }

  sd::RandomIdGenerator ids;
  tk::BookingOptions booking_options;
  booking_options.hold_ttl_ms = hold_ttl_s * 1000;
  booking_options.max_hold_ttl_ms = std::max(booking_options.max_hold_ttl_ms, hold_ttl_s * 1000);
  booking_options.orphan_authorization_ms = orphan_ms;
  tk::BookingService booking(**db, **seat_strategy, **payments, ids, now, booking_options);
  tk::IdempotencyStore idempotency(**db);

  // What a crash left behind: charges authorized for orders that never committed (void) or
  // committed but never captured (capture), holds that expired while we were down.
  if (auto r = booking.reconcile(); !r) {
    SD_LOG(kWarn) << "ticketd: startup reconcile failed (retried periodically): "
                  << r.status().to_string();
  } else {
    SD_LOG(kInfo) << "ticketd: startup reconcile: captured " << r->captured << ", voided "
                  << r->voided << ", refunded " << r->refunded;
  }
  if (auto n = booking.expire_due(); !n) {
    SD_LOG(kWarn) << "ticketd: startup hold sweep failed: " << n.status().to_string();
  }

  sd::net::ServerOptions options;
  options.host = host;
  options.port = static_cast<uint16_t>(port);
  options.threads = threads;
  options.body_limit = std::max(max_body_bytes + 1, size_t{1} << 20);  // the service answers 413
  options.max_connections = std::max<size_t>(options.max_connections, max_streams + 1024);
  options.handle_signals = false;  // see stop_signals()

  tk::ServiceOptions service_options;
  service_options.max_body_bytes = max_body_bytes;
  service_options.sweep_interval = sd::Duration(sweep_ms);
  service_options.reconcile_interval = sd::Duration(reconcile_ms);
  service_options.max_streams = max_streams;
  service_options.holds_per_minute = holds_per_minute;
  service_options.streams.max_buffered_bytes = stream_buffer_bytes;
  service_options.waiting_room.max_active = queue_max_active;
  service_options.waiting_room.admit_per_second = queue_rate;
  service_options.waiting_room.admit_burst = queue_burst;

  // The server owns the metrics registry and the timers the service needs and takes the router by
  // value, so the routes resolve the service late (as ratelimitd does).
  std::unique_ptr<tk::TicketingService> service;
  sd::net::Router router;
  tk::TicketingService::add_routes(router, [&service] { return service.get(); });
  sd::net::HttpServer server(options, std::move(router));
  tk::WorkerPool pool(static_cast<size_t>(workers));
  sd::metrics::Gauge& queued_gauge = server.metrics().gauge(
      "ticketing_worker_queue_depth", "Blocking booking calls waiting for a worker thread.");
  sd::metrics::Gauge& busy_gauge = server.metrics().gauge(
      "ticketing_workers_busy", "Worker threads running a blocking booking call.");
  server.metrics()
      .gauge("ticketing_workers", "Worker threads for blocking booking calls.")
      .set(static_cast<double>(pool.size()));
  pool.set_observer([&queued_gauge, &busy_gauge](size_t queued, size_t busy) {
    queued_gauge.set(static_cast<double>(queued));
    busy_gauge.set(static_cast<double>(busy));
  });
  service = std::make_unique<tk::TicketingService>(
      booking, idempotency, sd::SystemClock::instance(), ids, server.metrics(),
      [&pool](std::function<void()> fn) { pool.submit(std::move(fn)); },
      [&server](std::chrono::milliseconds delay, std::function<void()> fn) {
        return server.run_after(delay, std::move(fn));
      },
      service_options);

  if (sd::Status st = server.start(); !st) {
    std::cerr << "ticketd: cannot listen on " << host << ":" << port << ": " << st.to_string()
              << "\n";
    return kExitRuntime;
  }
  service->start();
  std::cout << "ticketd listening on http://" << host << ":" << server.port()
            << " (strategy: " << strategy
            << (*kind == tk::StrategyKind::kDlock ? ", locks: " + lock_uri : std::string())
            << ", db: " << db_path << ")" << std::endl;

  sd::net::run_until_stop_signal(server, "ticketd");
  service->shutdown();  // cancels the timers while the server still exists; closes streams
  pool.stop();          // runs what is queued (answers go nowhere now), joins
  service.reset();
  SD_LOG(kInfo) << "ticketd stopped";
  return 0;
}
