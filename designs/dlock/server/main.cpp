// dlockd: the distributed lock server. Thin: parse flags, open the store, recover the core, build
// the service, run the HTTP server until SIGINT/SIGTERM.
//
// Exit codes: 0 clean shutdown (or --help), 1 runtime failure (store/recovery/bind), 2 bad
// configuration (flags, store URI).

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/log.hpp"
#include "sd/dlock/core.hpp"
#include "sd/dlock/service.hpp"
#include "sd/dlock/store.hpp"
#include "sd/net/server.hpp"
#include "sd/net/signals.hpp"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

// memory:// | sqlite:///abs/path.db | sqlite://rel/path.db
sd::Result<std::unique_ptr<sd::dlock::Store>> open_store(const std::string& uri) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (uri == "memory://") return sd::dlock::make_memory_store();
  if (uri.starts_with(kSqlite)) {
    std::string path = uri.substr(kSqlite.size());
    if (path.empty() || path == "/" || path.back() == '/') {
      return sd::invalid_argument("store URI \"" + uri + "\" has no file path");
    }
    return sd::dlock::open_sqlite_store(path);
  }
  return sd::invalid_argument("unsupported store URI \"" + uri +
                              "\" (expected memory://, sqlite:///abs/path.db or "
                              "sqlite://relative/path.db)");
}

}  // namespace

int main(int argc, char** argv) {
  // Stop signals go to run_until_stop_signal's thread, not ServerOptions.handle_signals: on a
  // signal it first answers every parked long-poll (503) and only then stops the server, so
  // shutdown does not sit out the server's drain grace waiting for them.
  sd::net::block_stop_signals();

  CLI::App app{"dlockd: distributed lock server (HTTP API v1)"};
  std::string host = "127.0.0.1";
  int port = 7401;
  std::string store_uri = "sqlite://./var/dlock/dlock.db";
  long long lock_delay_ms = 0;
  int threads = 1;
  size_t max_body_bytes = 1 << 20;
  size_t max_connections = 4096;
  long long read_timeout_ms = 10'000;

  app.add_option("--host", host, "Address to bind")->envname("DLOCKD_HOST")->capture_default_str();
  app.add_option("--port", port, "Port to bind (0: any free port)")
      ->envname("DLOCKD_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--store", store_uri, "memory:// | sqlite:///abs/path.db | sqlite://rel/path.db")
      ->envname("DLOCKD_STORE")
      ->capture_default_str();
  app.add_option("--lock-delay-ms", lock_delay_ms,
                 "After a holder's lease expires, grant nothing on its locks for this long")
      ->envname("DLOCKD_LOCK_DELAY_MS")
      ->check(CLI::Range(0LL, 3'600'000LL))
      ->capture_default_str();
  app.add_option("--threads", threads, "I/O threads")
      ->envname("DLOCKD_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-body-bytes", max_body_bytes, "Larger request bodies get 413")
      ->envname("DLOCKD_MAX_BODY_BYTES")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-connections", max_connections, "Beyond this, 503 and close")
      ->envname("DLOCKD_MAX_CONNECTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--read-timeout-ms", read_timeout_ms, "Time to read one request (408 after)")
      ->envname("DLOCKD_READ_TIMEOUT_MS")
      ->check(CLI::Range(1LL, 3'600'000LL))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitConfig;
  }

  auto store = open_store(store_uri);
  if (!store) {
    std::cerr << "dlockd: " << store.status().message() << "\n";
    return store.status().code() == sd::Code::kInvalidArgument ? kExitConfig : kExitRuntime;
  }
  std::string store_desc = (*store)->describe();

  sd::SystemClock& clock = sd::SystemClock::instance();
  sd::RandomIdGenerator ids;
  sd::dlock::CoreOptions core_options;
  core_options.lock_delay = sd::Duration(lock_delay_ms);
  sd::dlock::LockCore core(**store, clock, ids, core_options);
  if (sd::Status st = core.recover(); !st) {
    std::cerr << "dlockd: recovering from " << store_desc << " failed: " << st.to_string() << "\n";
    return kExitRuntime;
  }

  sd::net::ServerOptions options;
  options.host = host;
  options.port = static_cast<uint16_t>(port);
  options.threads = threads;
  options.body_limit = max_body_bytes;
  options.max_connections = max_connections;
  options.read_timeout = std::chrono::milliseconds(read_timeout_ms);
  options.handle_signals = false;  // see stop_signals()

  // The server owns the metrics registry and the timers the service needs, and takes the router by
  // value; so the routes resolve the service late, and the service is built right after the server.
  std::unique_ptr<sd::dlock::LockService> service;
  sd::net::Router router;
  sd::dlock::LockService::register_routes(router, [&service] { return service.get(); });
  sd::net::HttpServer server(options, std::move(router));
  service = std::make_unique<sd::dlock::LockService>(
      core, clock, server.metrics(),
      [&server](std::chrono::milliseconds delay, std::function<void()> fn) {
        return server.run_after(delay, std::move(fn));
      },
      // Group commit: the requests the I/O loop handles before this task runs share one SQLite
      // transaction; their replies leave after its COMMIT (see LockService).
      [&server](std::function<void()> fn) { server.post(std::move(fn)); });

  if (sd::Status st = server.start(); !st) {
    std::cerr << "dlockd: cannot listen on " << host << ":" << port << ": " << st.to_string()
              << "\n";
    return kExitRuntime;
  }
  std::cout << "dlockd listening on http://" << host << ":" << server.port()
            << " (store: " << store_desc << ")" << std::endl;
  sd::net::run_until_stop_signal(server, "dlockd", [&] {
    service->shutdown();  // parked long-polls get 503 now, not after the drain grace
  });
  service->shutdown();  // idempotent; cancels the timer while the server still exists
  SD_LOG(kInfo) << "dlockd stopped";
  service.reset();
  return 0;
}
