#pragma once
// Internal to sd_net: the server core shared by server.cpp (lifecycle, accept, timers) and
// connection.cpp (one coroutine per connection). Asio/Beast are allowed here, never in include/.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/net/server.hpp"
#include "sd/net/sse.hpp"

namespace sd::net::detail {

// The connection's view of an EventStream's private state (a friend of EventStream).
struct EventStreamAccess {
  static std::chrono::milliseconds heartbeat(const EventStream& s) { return s.options_.heartbeat; }
  static bool dropped(const EventStream& s) {
    std::lock_guard<std::mutex> lk(s.mu_);
    return s.dropped_;
  }
};

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Lets objects that outlive the server (Responders, TimerHandles held by user code) know whether
// the io_context still exists before they post to it. ~ServerCore flips `alive` first, under mu.
struct Hub {
  std::mutex mu;
  bool alive = true;  // guarded by mu
};

class ServerCore;
class Connection;

// The Responder sink of one connection, reused for every request on it (one outstanding request
// at a time, so no per-request allocation). deliver() may run on any thread.
class ConnSink final : public Responder::Sink {
 public:
  ConnSink(std::weak_ptr<Connection> conn, std::shared_ptr<Hub> hub)
      : conn_(std::move(conn)), hub_(std::move(hub)) {}
  void deliver(Response r) override;  // also drops the abandon handler of the request
  void set_abandon_handler(std::function<void()> fn) override;

  // Connection side (its strand). take() returns the stored response or nullopt; when nullopt it
  // also marks the connection as waiting so a later deliver() wakes it.
  std::optional<Response> take_or_wait();
  // The client went away (or the server force-closed) while the request was unanswered: unless a
  // response is already stored, marks the sink closed and runs the abandon handler (outside mu_).
  // Returns false if a response was stored (or the sink was closed) first.
  bool abandon();
  void close();  // the connection is gone: later deliver() is a no-op; drops the handler unrun

 private:
  std::weak_ptr<Connection> conn_;
  std::shared_ptr<Hub> hub_;
  std::mutex mu_;
  std::optional<Response> resp_;      // guarded by mu_
  std::function<void()> on_abandon_;  // guarded by mu_; for the current request only
  bool waiting_ = false;              // guarded by mu_
  bool closed_ = false;               // guarded by mu_
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& core, tcp::socket socket, bool reject);
  asio::awaitable<void> run();
  void on_stop();   // strand: graceful stop; an idle connection closes now
  void on_force();  // strand: grace expired; abandon whatever is in flight
  void wake();      // strand: a long-poll response arrived / the SSE stream has news
  asio::any_io_executor executor() { return socket_.get_executor(); }

  std::list<std::weak_ptr<Connection>>::iterator reg_it;  // guarded by ServerCore::conns_mu_

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kStreaming };
  asio::awaitable<void> serve();
  // Long-poll: suspends until the response arrives, watching the socket meanwhile. nullopt: the
  // client went away first (the sink's abandon handler has run); nobody is left to answer.
  asio::awaitable<std::optional<Response>> await_response();
  void watch_peer();  // one async_wait(wait_read) on the socket
  void on_peer_readable(uint64_t gen, const boost::system::error_code& ec);
  // SSE (resp.stream set): writes the head (no Content-Length, "Connection: close" unless HEAD),
  // then the stream until it ends; always detaches the stream. True: the connection may serve the
  // next request (only after a HEAD).
  asio::awaitable<bool> write_stream(const Response& resp, bool head_only, bool keep_alive,
                                     unsigned version, Clock::time_point start);
  asio::awaitable<void> pump_stream();
  std::chrono::milliseconds stop_flush_limit() const;
  asio::awaitable<bool> write_response(const Response& resp, bool head_only, bool keep_alive,
                                       unsigned version);
  asio::awaitable<void> write_error_and_close(int status, std::string_view code,
                                              std::string message);
  asio::awaitable<void> linger_close();
  void fill_request();
  void set_deadline(Clock::time_point d);
  void arm(Clock::time_point d);
  void on_watchdog();

  // All members below are touched only on the connection's strand.
  ServerCore& core_;
  tcp::socket socket_;
  asio::steady_timer watchdog_;  // read/idle/write deadlines; cancels the socket when due
  asio::steady_timer wake_;      // a pending long-poll waits on it; ConnSink cancels it
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool forced_ = false;
  bool closed_ = false;
  bool reject_ = false;
  // Long-poll peer watch (await_response): parked_ while suspended; watching_ while an async_wait
  // is outstanding; watch_gen_ invalidates completions of earlier watches; peer_gone_ = EOF/reset.
  bool parked_ = false;
  bool streaming_ = false;  // pump_stream is running: the peer watch also serves it
  bool watching_ = false;
  bool peer_gone_ = false;
  uint64_t watch_gen_ = 0;
  State state_ = State::kIdle;
  boost::beast::flat_buffer buffer_;  // reused across requests on this connection
  std::optional<http::request_parser<http::string_body>> parser_;
  Request req_;
  std::string head_;  // serialized response head, reused
  std::string remote_;
  std::shared_ptr<ConnSink> sink_;
  std::shared_ptr<EventStream> stream_;  // the SSE response being written, if any
  bool stream_dropped_ = false;          // its producer dropped us as a slow consumer
};

class ServerCore {
 public:
  ServerCore(ServerOptions options, Router router);
  ~ServerCore();

  Status start();
  void run();
  void stop();
  TimerHandle run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  void post(std::function<void()> fn);

  // Used by connections.
  void record(Method m, int status, double seconds);
  void connection_opened(const std::shared_ptr<Connection>& c);
  void connection_closed(Connection& c);  // also from frames destroyed with the io_context

  ServerOptions opts;
  Router router;
  metrics::Registry registry;
  std::shared_ptr<Hub> hub = std::make_shared<Hub>();
  std::atomic<bool> stopping{false};
  std::atomic<size_t> active{0};  // live (not rejected) connections
  metrics::Gauge* conn_gauge = nullptr;
  metrics::Histogram* duration = nullptr;
  uint16_t bound_port = 0;

 private:
  asio::awaitable<void> accept_loop();
  void begin_shutdown();  // control strand
  void force_all();       // control strand
  void finish();          // control strand

  static constexpr int kMaxStatus = 600;
  // http_requests_total{method,code} counters, looked up in the registry once then cached.
  std::array<std::atomic<metrics::Counter*>, 8 * kMaxStatus> req_counters_{};

  std::mutex conns_mu_;
  std::list<std::weak_ptr<Connection>> conns_;  // guarded by conns_mu_

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  int running_ = 0;  // guarded by run_mu_

  // Asio objects after everything their handlers touch: the io_context is destroyed before the
  // members above, and destroying it destroys suspended coroutine frames that use them.
  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> control_;  // acceptor, signals, shutdown
  tcp::acceptor acceptor_;
  std::optional<asio::signal_set> signals_;
  asio::steady_timer grace_;
  bool started_ = false;  // control strand (and start() before run())
  bool shut_begun_ = false;
  bool forced_ = false;
  bool finished_ = false;
};

// Logs an exception escaping a detached coroutine instead of letting it reach io_context::run().
void log_coroutine_exception(std::exception_ptr e);

}  // namespace sd::net::detail
