#pragma once
// HTTP/1.1 server (Asio/Beast, C++20 coroutines, hidden behind a pimpl): keep-alive, explicit
// limits, graceful shutdown, built-in GET /healthz and GET /metrics, timers for long-poll
// deadlines.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sd/base/status.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"

namespace sd::net {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;               // 0: pick a free port; see HttpServer::port()
  size_t body_limit = 1 << 20;     // larger bodies -> 413
  size_t header_limit = 16 << 10;  // larger headers -> 431
  std::chrono::milliseconds read_timeout{
      10'000};  // to read one full request once it started -> 408
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive connection idle -> closed
  size_t max_connections = 4096;                    // beyond -> 503 and close
  int threads = 1;                                  // I/O threads run by run()
  bool handle_signals = false;                      // SIGINT/SIGTERM -> graceful stop()
  std::chrono::milliseconds shutdown_grace{5'000};  // in-flight requests get this long on stop()
};

// Cancels its timer when cancel() is called or it is destroyed.
class TimerHandle {
 public:
  class Impl {
   public:
    virtual ~Impl() = default;
    virtual void cancel() = 0;
  };
  TimerHandle() = default;
  explicit TimerHandle(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  TimerHandle(TimerHandle&&) noexcept = default;
  TimerHandle& operator=(TimerHandle&&) noexcept;
  ~TimerHandle();
  void cancel();

 private:
  std::shared_ptr<Impl> impl_;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Router router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status start();  // binds and listens; after it, port() is the bound port
  uint16_t port() const;
  void run();   // serves on options.threads threads until stop(); returns after drain
  void stop();  // thread-safe, idempotent: stop accepting, let in-flight finish, close
  metrics::Registry& metrics();

  // Runs fn on the server's executor after delay (thread-safe). fn never runs after the handle is
  // cancelled/destroyed or after the server stopped.
  [[nodiscard]] TimerHandle run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  // Runs fn on the server's executor as soon as possible (thread-safe).
  void post(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::net
