// TcpProxy: one io thread; per connection two pumps (client->upstream, upstream->client). All
// proxy and connection state is touched only on the io thread; set_mode() posts there and waits.

#include "sd/net/tcp_proxy.hpp"

#include <array>
#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "sd/base/log.hpp"

namespace sd::net {

namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Mode = TcpProxy::Mode;

struct ProxyConn;
}  // namespace

struct TcpProxy::Impl {
  asio::io_context ioc{1};  // first member: destroyed last, after everything bound to it
  tcp::acceptor acceptor{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  tcp::endpoint upstream;
  uint16_t port = 0;
  std::atomic<Mode> mode{Mode::kPass};
  // io thread only:
  std::map<uint64_t, std::shared_ptr<ProxyConn>> conns;
  uint64_t next_id = 0;
  bool closing = false;

  void accept();
  void on_accept(tcp::socket s);
  void apply_mode();  // brings every connection in line with `mode`
  void shutdown();    // closes everything and stops the loop
};

namespace {

// Closes a socket with a RST (SO_LINGER 0) rather than a FIN: what a reset looks like.
void reset_socket(tcp::socket& s) {
  if (!s.is_open()) return;
  error_code ig;
  s.set_option(tcp::socket::linger(true, 0), ig);
  s.close(ig);
}

struct ProxyConn : std::enable_shared_from_this<ProxyConn> {
  enum class State { kWaiting, kConnecting, kOpen, kClosed };
  struct Pump {
    tcp::socket* from = nullptr;
    tcp::socket* to = nullptr;
    std::array<char, 16 << 10> buf{};
    bool parked = false;                  // waiting for kPass
    std::optional<error_code> parked_ec;  // a read completion held back (with parked_n bytes)
    size_t parked_n = 0;
    bool done = false;  // EOF read and passed on
  };

  ProxyConn(TcpProxy::Impl& p, uint64_t i, tcp::socket c)
      : proxy(p), id(i), client(std::move(c)), upstream(p.ioc) {
    pumps[0].from = &client;
    pumps[0].to = &upstream;
    pumps[1].from = &upstream;
    pumps[1].to = &client;
  }

  void connect() {
    state = State::kConnecting;
    upstream.async_connect(proxy.upstream, [self = shared_from_this()](const error_code& ec) {
      if (self->state == State::kClosed) return;
      if (ec) return self->abort();  // upstream refused: refuse the client too
      self->state = State::kOpen;
      error_code ig;
      self->client.set_option(tcp::no_delay(true), ig);
      self->upstream.set_option(tcp::no_delay(true), ig);
      self->read(0);
      self->read(1);
    });
  }

  void read(int d) {
    Pump& p = pumps[d];
    if (state != State::kOpen || p.done) return;
    if (proxy.mode.load() != Mode::kPass) {
      p.parked = true;  // blackhole: leave the data in the kernel
      return;
    }
    p.from->async_read_some(asio::buffer(p.buf),
                            [self = shared_from_this(), d](const error_code& ec, size_t n) {
                              self->on_read(d, ec, n);
                            });
  }

  void on_read(int d, const error_code& ec, size_t n) {
    if (state != State::kOpen) return;
    Pump& p = pumps[d];
    if (proxy.mode.load() != Mode::kPass) {
      // Arrived during a partition: hold it (data, EOF or error alike) until the heal.
      p.parked = true;
      p.parked_ec = ec;
      p.parked_n = n;
      return;
    }
    forward(d, ec, n);
  }

  void forward(int d, const error_code& ec, size_t n) {
    Pump& p = pumps[d];
    if (ec == asio::error::eof) {
      // Half-close: pass the FIN on; the connection ends when both directions did.
      p.done = true;
      error_code ig;
      p.to->shutdown(tcp::socket::shutdown_send, ig);
      if (pumps[0].done && pumps[1].done) close();
      return;
    }
    if (ec) return abort();  // reset or error on one side: reset the other as well
    asio::async_write(*p.to, asio::buffer(p.buf.data(), n),
                      [self = shared_from_this(), d](const error_code& wec, size_t) {
                        if (self->state != State::kOpen) return;
                        if (wec) return self->abort();
                        self->read(d);
                      });
  }

  // The partition healed.
  void resume() {
    if (state == State::kWaiting) return connect();
    if (state != State::kOpen) return;
    for (int d = 0; d < 2; ++d) {
      Pump& p = pumps[d];
      if (!p.parked) continue;
      p.parked = false;
      if (p.parked_ec) {
        error_code ec = *p.parked_ec;
        p.parked_ec.reset();
        forward(d, ec, p.parked_n);
        if (state != State::kOpen) return;
      } else {
        read(d);
      }
    }
  }

  void abort() { finish(true); }
  void close() { finish(false); }

  void finish(bool rst) {
    if (state == State::kClosed) return;
    state = State::kClosed;
    for (tcp::socket* s : {&client, &upstream}) {
      if (rst) {
        reset_socket(*s);
      } else {
        error_code ig;
        s->close(ig);
      }
    }
    proxy.conns.erase(id);  // callers hold a shared_ptr, so `this` lives on until they return
  }

  TcpProxy::Impl& proxy;
  uint64_t id;
  tcp::socket client, upstream;
  State state = State::kWaiting;
  std::array<Pump, 2> pumps;
};

}  // namespace

void TcpProxy::Impl::accept() {
  acceptor.async_accept([this](const error_code& ec, tcp::socket s) {
    if (closing || ec == asio::error::operation_aborted) return;
    if (!ec) on_accept(std::move(s));
    accept();
  });
}

void TcpProxy::Impl::on_accept(tcp::socket s) {
  Mode m = mode.load();
  if (m == Mode::kReset) return reset_socket(s);  // accepted, then refused at once
  auto conn = std::make_shared<ProxyConn>(*this, next_id++, std::move(s));
  conns.emplace(conn->id, conn);
  if (m == Mode::kPass) conn->connect();  // kBlackhole: waits in kWaiting until healed
}

void TcpProxy::Impl::apply_mode() {
  Mode m = mode.load();
  if (m == Mode::kBlackhole) return;  // pumps park at their next step
  std::vector<std::shared_ptr<ProxyConn>> all;
  all.reserve(conns.size());
  for (auto& [id, c] : conns) all.push_back(c);
  for (auto& c : all) {
    if (m == Mode::kReset) {
      c->abort();
    } else {
      c->resume();
    }
  }
}

void TcpProxy::Impl::shutdown() {
  closing = true;
  error_code ig;
  acceptor.close(ig);
  std::vector<std::shared_ptr<ProxyConn>> all;
  for (auto& [id, c] : conns) all.push_back(c);
  for (auto& c : all) c->abort();
  conns.clear();
  work.reset();
  ioc.stop();
}

TcpProxy::TcpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<TcpProxy>> TcpProxy::start(std::string upstream_host, uint16_t upstream_port,
                                                  uint16_t listen_port) {
  auto impl = std::make_unique<Impl>();
  error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto results = resolver.resolve(upstream_host, std::to_string(upstream_port), ec);
  if (ec || results.empty()) {
    return unavailable("tcp proxy: cannot resolve upstream " + upstream_host + ": " + ec.message());
  }
  impl->upstream = results.begin()->endpoint();
  tcp::endpoint ep(asio::ip::address_v4::loopback(), listen_port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("tcp proxy: listen on 127.0.0.1:" + std::to_string(listen_port) + ": " +
                       ec.message());
  }
  impl->port = impl->acceptor.local_endpoint(ec).port();
  impl->work.emplace(impl->ioc.get_executor());
  impl->accept();
  Impl* p = impl.get();
  impl->thread = std::thread([p] {
    for (;;) {
      try {
        p->ioc.run();
        return;
      } catch (const std::exception& e) {  // handlers do not throw; a last resort
        SD_LOG(kError) << "tcp proxy: io thread caught: " << e.what();
      }
    }
  });
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(impl)));
}

TcpProxy::~TcpProxy() {
  Impl* p = impl_.get();
  asio::post(p->ioc, [p] { p->shutdown(); });
  if (p->thread.joinable()) p->thread.join();
  // Handlers still queued (holding connections) are destroyed with the io_context.
}

uint16_t TcpProxy::port() const {
  return impl_->port;
}

TcpProxy::Mode TcpProxy::mode() const {
  return impl_->mode.load();
}

void TcpProxy::set_mode(Mode m) {
  impl_->mode.store(m);
  std::promise<void> applied;
  auto done = applied.get_future();
  Impl* p = impl_.get();
  asio::post(p->ioc, [p, &applied] {
    p->apply_mode();
    applied.set_value();
  });
  done.wait();
}

}  // namespace sd::net
