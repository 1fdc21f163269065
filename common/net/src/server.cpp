// HttpServer lifecycle: bind, accept, run threads, graceful shutdown, built-in routes, timers.
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sd/base/log.hpp"
#include "server_impl.hpp"

namespace sd::net {

namespace detail {

namespace {
constexpr auto kTok = asio::as_tuple(asio::use_awaitable);

// run_after: the part user code holds. It owns no Asio object, so it may outlive the server.
struct TimerState;
struct TimerCtl final : TimerHandle::Impl {
  explicit TimerCtl(std::shared_ptr<Hub> h) : hub(std::move(h)) {}
  void cancel() override;
  std::shared_ptr<Hub> hub;
  std::atomic<bool> cancelled{false};
  std::weak_ptr<TimerState> state;  // set once before the handle is returned
};

// The part the pending wait owns (destroyed with the io_context at the latest).
struct TimerState {
  TimerState(asio::any_io_executor ex, std::function<void()> f, std::shared_ptr<TimerCtl> c)
      : timer(std::move(ex)), fn(std::move(f)), ctl(std::move(c)) {}
  asio::steady_timer timer;
  std::function<void()> fn;  // strand only once armed
  std::shared_ptr<TimerCtl> ctl;
};

void TimerCtl::cancel() {
  if (cancelled.exchange(true)) return;
  // Under hub->mu the io_context is alive, so locking `state` and posting to it is safe; `st` is
  // released before the lock, so a last reference never destroys the timer after the context.
  std::lock_guard<std::mutex> lk(hub->mu);
  if (!hub->alive) return;
  if (auto st = state.lock()) {
    asio::post(st->timer.get_executor(), [st] {
      st->timer.cancel();
      st->fn = nullptr;  // release captures now rather than when the timer would have fired
    });
  }
}

void run_user_fn(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    SD_LOG(kError) << "sd::net: server callback threw: " << e.what();
  } catch (...) {
    SD_LOG(kError) << "sd::net: server callback threw a non-standard exception";
  }
}
}  // namespace

void log_coroutine_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    SD_LOG(kError) << "sd::net: connection coroutine failed: " << ex.what();
  } catch (...) {
    SD_LOG(kError) << "sd::net: connection coroutine failed";
  }
}

ServerCore::ServerCore(ServerOptions options, Router r)
    : opts(std::move(options)),
      router(std::move(r)),
      ioc_(opts.threads > 0 ? opts.threads : 1),
      control_(asio::make_strand(ioc_)),
      acceptor_(control_),
      grace_(control_) {
  if (opts.threads < 1) opts.threads = 1;
  conn_gauge = &registry.gauge("http_connections_active", "Open HTTP connections.");
  duration = &registry.histogram("http_request_duration_seconds",
                                 "Time from the first request byte to the response written.");
  // Built-ins go last so a router that already defines them wins.
  if (!router.has_route(Method::kGet, "/healthz")) {
    router.add(Method::kGet, "/healthz", [](Request&) {
      Response resp;
      resp.body = R"({"status":"ok"})";
      return resp;
    });
  }
  if (!router.has_route(Method::kGet, "/metrics")) {
    router.add(Method::kGet, "/metrics", [this](Request&) {
      return Response::text(200, registry.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
}

ServerCore::~ServerCore() {
  stop();
  {
    // A run() on another thread finishes the graceful drain (bounded by shutdown_grace).
    std::unique_lock<std::mutex> lk(run_mu_);
    run_cv_.wait(lk, [&] { return running_ == 0; });
  }
  {
    std::lock_guard<std::mutex> lk(hub->mu);
    hub->alive = false;
  }
  ioc_.stop();
  // Member destruction now closes the acceptor, then destroys the io_context (and with it any
  // suspended coroutine frames), then the registry and router they referenced.
}

Status ServerCore::start() {
  if (started_) return Status::ok();
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(opts.host, ec);
  if (ec) {
    // A host name: resolve synchronously once at startup.
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port), ec);
    if (ec || results.empty()) {
      return unavailable("cannot resolve listen host '" + opts.host + "': " + ec.message());
    }
    addr = results.begin()->endpoint().address();
  }
  tcp::endpoint ep(addr, opts.port);
  std::string where = opts.host + ":" + std::to_string(opts.port);
  acceptor_.open(ep.protocol(), ec);
  if (ec) return unavailable("open " + where + ": " + ec.message());
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return unavailable("listen on " + where + ": " + ec.message());
  }
  bound_port = acceptor_.local_endpoint(ec).port();
  started_ = true;
  asio::co_spawn(control_, accept_loop(), log_coroutine_exception);
  if (opts.handle_signals) {
    signals_.emplace(control_, SIGINT, SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& e, int) {
      if (!e) stop();
    });
  }
  return Status::ok();
}

void ServerCore::run() {
  if (!started_) {
    Status st = start();
    if (!st.is_ok()) {
      SD_LOG(kError) << "sd::net: server failed to start: " << st.to_string();
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lk(run_mu_);
    ++running_;
  }
  auto worker = [this] {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {  // handlers catch their own; this is a last resort
        SD_LOG(kError) << "sd::net: io thread caught: " << e.what();
      }
    }
  };
  std::vector<std::thread> extra;
  for (int i = 1; i < opts.threads; ++i) extra.emplace_back(worker);
  worker();
  for (auto& t : extra) t.join();
  {
    std::lock_guard<std::mutex> lk(run_mu_);
    --running_;
  }
  run_cv_.notify_all();
}

void ServerCore::stop() {
  if (stopping.exchange(true)) return;
  asio::post(control_, [this] { begin_shutdown(); });
}

asio::awaitable<void> ServerCore::accept_loop() {
  for (;;) {
    // One strand per connection: its socket, timers and coroutine never run concurrently, while
    // different connections spread over the io threads. With a single io thread the io_context
    // already serializes everything, and the strand only costs a dispatch per handler (~3 % of
    // dlockd's CPU in a profile).
    tcp::socket sock(opts.threads > 1 ? asio::any_io_executor(asio::make_strand(ioc_))
                                      : asio::any_io_executor(ioc_.get_executor()));
    auto [ec] = co_await acceptor_.async_accept(sock, kTok);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // EMFILE and friends: back off instead of spinning on the error.
      asio::steady_timer backoff(control_, std::chrono::milliseconds(50));
      co_await backoff.async_wait(kTok);
      continue;
    }
    if (stopping.load()) co_return;
    boost::system::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    bool reject = active.load() >= opts.max_connections;
    auto ex = sock.get_executor();
    auto conn = std::make_shared<Connection>(*this, std::move(sock), reject);
    if (!reject) connection_opened(conn);
    asio::co_spawn(
        ex, [conn]() { return conn->run(); }, log_coroutine_exception);
  }
}

void ServerCore::connection_opened(const std::shared_ptr<Connection>& c) {
  active.fetch_add(1);
  conn_gauge->add(1);
  std::lock_guard<std::mutex> lk(conns_mu_);
  c->reg_it = conns_.insert(conns_.end(), c);
}

void ServerCore::connection_closed(Connection& c) {
  {
    std::lock_guard<std::mutex> lk(conns_mu_);
    conns_.erase(c.reg_it);
  }
  conn_gauge->add(-1);
  if (active.fetch_sub(1) == 1 && stopping.load()) {
    std::lock_guard<std::mutex> lk(hub->mu);  // not while the io_context is being destroyed
    if (hub->alive)
      asio::post(control_, [this] {
        if (active.load() == 0) finish();
      });
  }
}

void ServerCore::begin_shutdown() {
  if (shut_begun_) return;
  shut_begun_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  if (signals_) signals_->cancel(ignored);
  {
    std::lock_guard<std::mutex> lk(conns_mu_);
    for (auto& w : conns_) {
      if (auto c = w.lock()) asio::post(c->executor(), [c] { c->on_stop(); });
    }
  }
  if (active.load() == 0) return finish();
  grace_.expires_after(opts.shutdown_grace);
  grace_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) force_all();
  });
}

void ServerCore::force_all() {
  if (finished_) return;
  if (forced_) return finish();  // second expiry: stragglers do not hold run() hostage
  forced_ = true;
  {
    std::lock_guard<std::mutex> lk(conns_mu_);
    for (auto& w : conns_) {
      if (auto c = w.lock()) asio::post(c->executor(), [c] { c->on_force(); });
    }
  }
  grace_.expires_after(std::chrono::seconds(1));
  grace_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) force_all();
  });
}

void ServerCore::finish() {
  if (finished_) return;
  finished_ = true;
  grace_.cancel();
  // Pending run_after timers and posted callbacks never run after this.
  ioc_.stop();
}

void ServerCore::record(Method m, int status, double seconds) {
  int code = (status >= 100 && status < kMaxStatus) ? status : 500;
  size_t idx = static_cast<size_t>(m) * kMaxStatus + static_cast<size_t>(code);
  metrics::Counter* c = req_counters_[idx].load(std::memory_order_acquire);
  if (!c) {
    // Two threads may race here; the registry returns the same counter to both.
    c = &registry.counter(
        "http_requests_total", "HTTP requests served, by method and status.",
        {{"method", std::string(method_name(m))}, {"code", std::to_string(code)}});
    req_counters_[idx].store(c, std::memory_order_release);
  }
  c->inc();
  duration->observe(seconds);
}

TimerHandle ServerCore::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto ctl = std::make_shared<TimerCtl>(hub);
  auto st = std::make_shared<TimerState>(asio::make_strand(ioc_), std::move(fn), ctl);
  ctl->state = st;
  // Arming here is safe: nobody can cancel before the handle is returned, and later cancels go
  // through the timer's strand.
  st->timer.expires_after(delay);
  st->timer.async_wait([st](const boost::system::error_code& ec) {
    if (!ec && !st->ctl->cancelled.load() && st->fn) run_user_fn(st->fn);
    st->fn = nullptr;
  });
  return TimerHandle(std::move(ctl));
}

void ServerCore::post(std::function<void()> fn) {
  asio::post(ioc_, [fn = std::move(fn)] { run_user_fn(fn); });
}

}  // namespace detail

// --- public API -------------------------------------------------------------------------------

TimerHandle& TimerHandle::operator=(TimerHandle&& other) noexcept {
  if (this != &other) {
    cancel();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

TimerHandle::~TimerHandle() {
  cancel();
}

void TimerHandle::cancel() {
  if (impl_) impl_->cancel();
}

struct HttpServer::Impl : detail::ServerCore {
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(ServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::start() {
  return impl_->start();
}
uint16_t HttpServer::port() const {
  return impl_->bound_port;
}
void HttpServer::run() {
  impl_->run();
}
void HttpServer::stop() {
  impl_->stop();
}
metrics::Registry& HttpServer::metrics() {
  return impl_->registry;
}
TimerHandle HttpServer::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  return impl_->run_after(delay, std::move(fn));
}
void HttpServer::post(std::function<void()> fn) {
  impl_->post(std::move(fn));
}

}  // namespace sd::net
