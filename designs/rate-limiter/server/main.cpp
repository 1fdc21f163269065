// ratelimitd: the rate-limit service. Thin: parse flags, load the rules, open the store and the
// lock backend, build the service, run the HTTP server until SIGINT/SIGTERM. SIGHUP reloads the
// rules (as does a change of the rules files, polled every --reload-poll-ms).
//
// Exit codes: 0 clean shutdown (or --help), 1 runtime failure (invalid rules, bind), 2 bad
// configuration (flags, URIs, missing --rules).

#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/log.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/net/server.hpp"
#include "sd/net/signals.hpp"
#include "sd/ratelimit/concurrency.hpp"
#include "sd/ratelimit/rules.hpp"
#include "sd/ratelimit/rules_watch.hpp"
#include "sd/ratelimit/service.hpp"
#include "sd/ratelimit/store.hpp"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

// SIGHUP goes to the RulesWatcher's thread, the stop signals to run_until_stop_signal's; all are
// blocked first thing, before any library can start a thread that would otherwise inherit an
// unblocked mask (an unhandled SIGHUP terminates the process).
void block_signals() {
  sd::net::block_stop_signals();
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  block_signals();

  CLI::App app{"ratelimitd: rate-limit service (HTTP API v1, nginx auth_request)"};
  std::string host = "127.0.0.1";
  int port = 7402;
  std::string rules_path;
  std::string store_uri = "memory://";
  std::string lock_uri = "memory://";
  std::string on_store_error = "open";
  bool legacy_headers = false;
  int threads = 1;
  long long reload_poll_ms = 1000;
  long long permit_ttl_ms = 60'000;
  size_t max_body_bytes = 256 << 10;

  app.add_option("--host", host, "Address to bind")
      ->envname("RATELIMITD_HOST")
      ->capture_default_str();
  app.add_option("--port", port, "Port to bind (0: any free port)")
      ->envname("RATELIMITD_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--rules", rules_path, "Rules YAML file or directory of *.yaml (required)")
      ->envname("RATELIMITD_RULES")
      ->required();
  app.add_option("--store", store_uri, "Limiter state: memory:// | redis://host:port[?...]")
      ->envname("RATELIMITD_STORE")
      ->capture_default_str();
  app.add_option("--lock-uri", lock_uri,
                 "dlock backend for concurrency rules: memory:// | dlockd:// | redis:// | etcd://")
      ->envname("RATELIMITD_LOCK_URI")
      ->capture_default_str();
  app.add_option("--on-store-error", on_store_error,
                 "When the store fails: open (allow) or closed (429)")
      ->envname("RATELIMITD_ON_STORE_ERROR")
      ->check(CLI::IsMember({"open", "closed"}))
      ->capture_default_str();
  app.add_flag("--legacy-headers", legacy_headers, "Also send X-RateLimit-Limit/Remaining/Reset")
      ->envname("RATELIMITD_LEGACY_HEADERS");
  app.add_option("--threads", threads,
                 "I/O threads (a remote --lock-uri blocks one per concurrency call)")
      ->envname("RATELIMITD_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--reload-poll-ms", reload_poll_ms,
                 "How often to check the rules files for changes (0: only SIGHUP / API)")
      ->envname("RATELIMITD_RELOAD_POLL_MS")
      ->check(CLI::Range(0LL, 3'600'000LL))
      ->capture_default_str();
  app.add_option("--permit-ttl-ms", permit_ttl_ms,
                 "Concurrency permits not released within this are released by the service")
      ->envname("RATELIMITD_PERMIT_TTL_MS")
      ->check(CLI::Range(1LL, 86'400'000LL))
      ->capture_default_str();
  app.add_option("--max-body-bytes", max_body_bytes, "Larger request bodies get 413")
      ->envname("RATELIMITD_MAX_BODY_BYTES")
      ->check(CLI::Range(size_t{1}, size_t{16} << 20))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitConfig;
  }

  auto rules = sd::ratelimit::RuleSet::load(rules_path);
  if (!rules) {
    std::cerr << "ratelimitd: invalid rules: " << rules.status().message() << "\n";
    return kExitRuntime;
  }
  sd::SystemClock& clock = sd::SystemClock::instance();
  auto store = sd::ratelimit::open_store(store_uri, {.clock = &clock});
  if (!store) {
    std::cerr << "ratelimitd: --store: " << store.status().message() << "\n";
    return store.status().code() == sd::Code::kInvalidArgument ? kExitConfig : kExitRuntime;
  }
  auto backend = sd::dlock::open_backend(lock_uri);
  if (!backend) {
    std::cerr << "ratelimitd: --lock-uri: " << backend.status().message() << "\n";
    return backend.status().code() == sd::Code::kInvalidArgument ? kExitConfig : kExitRuntime;
  }
  sd::ratelimit::ConcurrencyLimiter concurrency(*backend);
  sd::ratelimit::RulesSource source(*rules);

  sd::net::ServerOptions options;
  options.host = host;
  options.port = static_cast<uint16_t>(port);
  options.threads = threads;
  options.body_limit = max_body_bytes;
  options.handle_signals = false;  // see blocked_signals()

  sd::ratelimit::ServiceOptions service_options;
  service_options.on_store_error = on_store_error == "closed"
                                       ? sd::ratelimit::StoreErrorPolicy::kClosed
                                       : sd::ratelimit::StoreErrorPolicy::kOpen;
  service_options.legacy_headers = legacy_headers;
  service_options.permit_ttl = sd::Duration(permit_ttl_ms);
  service_options.max_body_bytes = max_body_bytes;

  // The server owns the metrics registry and the timers the service needs and takes the router by
  // value, so the routes resolve the service late (as dlockd does).
  std::unique_ptr<sd::ratelimit::RateLimitService> service;
  sd::net::Router router;
  sd::ratelimit::RateLimitService::register_routes(router, [&service] { return service.get(); });
  sd::net::HttpServer server(options, std::move(router));
  sd::RandomIdGenerator ids;
  service = std::make_unique<sd::ratelimit::RateLimitService>(
      source, **store, &concurrency, clock, server.metrics(),
      [&server](std::chrono::milliseconds delay, std::function<void()> fn) {
        return server.run_after(delay, std::move(fn));
      },
      ids, service_options);

  sd::ratelimit::RulesWatcher watcher(
      rules_path, source, sd::Duration(reload_poll_ms > 0 ? reload_poll_ms : 1000),
      [&service, &source](const sd::Status& st) {
        if (service) service->record_reload(st);
        if (st.is_ok()) {
          SD_LOG(kInfo) << "ratelimitd: rules reloaded (version " << source.version() << ")";
        } else {
          SD_LOG(kWarn) << "ratelimitd: rules reload failed, keeping the old rules: "
                        << st.message();
        }
      });
  service->set_reloader([&watcher] { return watcher.reload(); });
  watcher.reload_on_sighup();
  if (reload_poll_ms > 0) watcher.start();

  if (sd::Status st = server.start(); !st) {
    std::cerr << "ratelimitd: cannot listen on " << host << ":" << port << ": " << st.to_string()
              << "\n";
    return kExitRuntime;
  }
  service->start();
  std::cout << "ratelimitd listening on http://" << host << ":" << server.port()
            << " (rules: " << rules_path << ", store: " << (*store)->describe()
            << ", locks: " << lock_uri << ")" << std::endl;

  sd::net::run_until_stop_signal(server, "ratelimitd");
  watcher.stop();
  service->shutdown();  // cancels timers while the server still exists; releases permits
  SD_LOG(kInfo) << "ratelimitd stopped";
  service.reset();
  return 0;
}
