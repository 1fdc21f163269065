// One coroutine per connection: idle wait, request read with limits, dispatch, (long-poll) wait,
// response write (or an SSE stream), keep-alive loop. Everything here runs on the connection's
// strand.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "sd/base/log.hpp"
#include "server_impl.hpp"

namespace sd::net::detail {

namespace {

constexpr auto kTok = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 << 10;
constexpr size_t kMaxDrain = 64 << 20;                  // lingering close reads at most this much
constexpr std::chrono::milliseconds kMaxLinger{2'000};  // ... for at most this long
// On stop(), an SSE stream still writes what is queued, but each write gets at most this long (or
// shutdown_grace if shorter): a client that does not read must not hold up stop().
constexpr std::chrono::milliseconds kMaxStopFlush{1'000};

Method to_method(http::verb v, std::string_view s) {
  switch (v) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::head:
      return Method::kHead;
    case http::verb::post:
      return Method::kPost;
    case http::verb::put:
      return Method::kPut;
    case http::verb::delete_:
      return Method::kDelete;
    case http::verb::patch:
      return Method::kPatch;
    case http::verb::options:
      return Method::kOptions;
    default:
      return parse_method(s);
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lx = (x >= 'A' && x <= 'Z') ? static_cast<char>(x - 'A' + 'a') : x;
           auto ly = (y >= 'A' && y <= 'Z') ? static_cast<char>(y - 'A' + 'a') : y;
           return lx == ly;
         });
}

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

void append_int(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

bool status_has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

// Serializes the response head by hand into a reused string: cheaper than Beast's fields container
// and serializer for the small, fixed set of headers we emit. streaming: no Content-Length (the
// body ends when the connection closes).
void build_head(std::string& h, const Response& r, bool keep_alive, unsigned version,
                bool streaming = false) {
  h.clear();
  h += "HTTP/1.1 ";
  append_int(h, static_cast<uint64_t>(r.status));
  h += ' ';
  http::status st = http::int_to_status(static_cast<unsigned>(r.status));
  if (st == http::status::unknown) {
    h += "Unknown";
  } else {
    auto reason = http::obsolete_reason(st);
    h.append(reason.data(), reason.size());
  }
  h += "\r\nServer: sd-net\r\n";
  bool body_allowed = status_has_body(r.status);
  if (body_allowed && !r.content_type.empty() && !has_crlf(r.content_type)) {
    h += "Content-Type: ";
    h += r.content_type;
    h += "\r\n";
  }
  for (const auto& [k, v] : r.headers) {
    // We own framing and connection management; CR/LF would allow response splitting.
    if (iequals(k, "content-length") || iequals(k, "transfer-encoding") ||
        iequals(k, "connection") || has_crlf(k) || has_crlf(v) || k.empty()) {
      continue;
    }
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  if (body_allowed && !streaming) {
    h += "Content-Length: ";
    append_int(h, r.body.size());
    h += "\r\n";
  }
  if (!keep_alive) {
    h += "Connection: close\r\n";
  } else if (version == 10) {
    h += "Connection: keep-alive\r\n";
  }
  h += "\r\n";
}

bool is_http_error(const boost::system::error_code& ec) {
  return &ec.category() == &http::make_error_code(http::error::end_of_stream).category();
}

}  // namespace

// --- ConnSink ---------------------------------------------------------------------------------

void ConnSink::deliver(Response r) {
  std::function<void()> dropped;  // the request's abandon handler, destroyed outside mu_
  std::shared_ptr<EventStream> orphan;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_ || resp_) {
      orphan = std::move(r.stream);
    } else {
      resp_ = std::move(r);
      dropped.swap(on_abandon_);
      // Inline answers (sync handlers) are picked up right after dispatch() returns: no wake-up.
      if (!waiting_) return;
      waiting_ = false;
    }
  }
  if (orphan) {
    orphan->detach();  // never written: its producer learns through on_closed
    return;
  }
  // Long-poll answer from any thread: wake the connection on its strand. Holding hub->mu keeps
  // the io_context alive while we post, and `c` is released before we unlock.
  std::lock_guard<std::mutex> hl(hub_->mu);
  if (!hub_->alive) return;
  if (auto c = conn_.lock()) asio::post(c->executor(), [c] { c->wake(); });
}

std::optional<Response> ConnSink::take_or_wait() {
  std::lock_guard<std::mutex> lk(mu_);
  if (resp_) {
    std::optional<Response> r = std::move(resp_);
    resp_.reset();
    waiting_ = false;
    return r;
  }
  waiting_ = true;
  return std::nullopt;
}

void ConnSink::set_abandon_handler(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  // Answered or gone already: fn is dropped (destroyed after the unlock, being declared earlier).
  if (!closed_ && !resp_) on_abandon_.swap(fn);
}

bool ConnSink::abandon() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_ || resp_) return false;
    closed_ = true;
    waiting_ = false;
    fn.swap(on_abandon_);
  }
  if (fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      SD_LOG(kError) << "sd::net: abandon handler threw: " << e.what();
    } catch (...) {
      SD_LOG(kError) << "sd::net: abandon handler threw";
    }
  }
  return true;
}

void ConnSink::close() {
  std::function<void()> dropped;
  std::optional<Response> unsent;
  {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    waiting_ = false;
    unsent.swap(resp_);
    dropped.swap(on_abandon_);
  }
  if (unsent && unsent->stream) unsent->stream->detach();
}

// --- Connection -------------------------------------------------------------------------------

Connection::Connection(ServerCore& core, tcp::socket socket, bool reject)
    : core_(core),
      socket_(std::move(socket)),
      watchdog_(socket_.get_executor()),
      wake_(socket_.get_executor()),
      reject_(reject) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  sink_ = std::make_shared<ConnSink>(weak_from_this(), core_.hub);
  // Runs on normal exit and also when the frame is destroyed with the io_context (no Asio calls).
  struct Guard {
    Connection& c;
    ~Guard() {
      c.sink_->close();
      if (!c.reject_) c.core_.connection_closed(c);
    }
  } guard{*this};
  try {
    co_await serve();
  } catch (const std::exception& e) {
    SD_LOG(kError) << "sd::net: connection " << remote_ << " failed: " << e.what();
  }
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  watchdog_.cancel();
  wake_.cancel();
}

asio::awaitable<void> Connection::serve() {
  if (reject_) {
    co_await write_error_and_close(503, "unavailable", "too many connections");
    co_return;
  }
  const auto& o = core_.opts;
  for (;;) {
    if (buffer_.size() == 0) {
      // Idle: wait for the first byte of the next request under idle_timeout.
      if (core_.stopping.load() || forced_) co_return;
      state_ = State::kIdle;
      set_deadline(Clock::now() + o.idle_timeout);
      auto [ec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadChunk), kTok);
      if (ec) co_return;  // idle timeout, peer closed, or shutdown: close quietly
      buffer_.commit(n);
    }
    // Reading: the whole request must arrive within read_timeout of its first byte.
    state_ = State::kReading;
    const auto start = Clock::now();
    timed_out_ = false;
    set_deadline(start + o.read_timeout);
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(o.header_limit, UINT32_MAX)));
    parser_->body_limit(o.body_limit);
    auto [ec, n] = co_await http::async_read_header(socket_, buffer_, *parser_, kTok);
    (void)n;
    if (!ec && !parser_->is_done()) {
      const auto& msg = parser_->get();
      auto expect = msg[http::field::expect];
      if (iequals({expect.data(), expect.size()}, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(
            socket_, asio::buffer(kContinue.data(), kContinue.size()), kTok);
        (void)wn;
        ec = wec;
      }
      if (!ec) {
        auto [rec, rn] = co_await http::async_read(socket_, buffer_, *parser_, kTok);
        (void)rn;
        ec = rec;
      }
    }
    if (ec) {
      if (forced_) co_return;
      if (timed_out_) {
        co_await write_error_and_close(408, "request_timeout",
                                       "request not received within the read timeout");
      } else if (ec == http::error::body_limit) {
        co_await write_error_and_close(
            413, "payload_too_large",
            "request body exceeds " + std::to_string(o.body_limit) + " bytes");
      } else if (ec == http::error::header_limit) {
        co_await write_error_and_close(431, "header_too_large", "request header too large");
      } else if (is_http_error(ec) && ec != http::error::end_of_stream &&
                 ec != http::error::partial_message) {
        co_await write_error_and_close(400, "bad_request", "malformed HTTP: " + ec.message());
      }
      co_return;  // transport errors and EOF mid-request: nobody to answer
    }
    timed_out_ = false;
    fill_request();
    const bool head_only = req_.method == Method::kHead;
    const unsigned version = parser_->get().version();
    bool keep_alive = parser_->get().keep_alive();

    // Handling: no deadline; long-polls bound themselves (run_after) and stop() forces them.
    state_ = State::kHandling;
    set_deadline(Clock::time_point::max());
    try {
      core_.router.dispatch(req_, Responder(sink_));
    } catch (const std::exception& e) {  // the router catches handler errors; this is bad_alloc
      SD_LOG(kError) << "sd::net: dispatch failed: " << e.what();
    }
    std::optional<Response> resp = sink_->take_or_wait();
    if (!resp) {  // long-poll: only this path watches the socket
      resp = co_await await_response();
      if (!resp) {  // the client went away before the answer: nobody to write to
        core_.record(req_.method, 499, std::chrono::duration<double>(Clock::now() - start).count());
        co_return;
      }
    }

    state_ = State::kWriting;
    set_deadline(Clock::now() + o.idle_timeout);
    keep_alive = keep_alive && !core_.stopping.load() && !forced_;
    if (resp->stream) {
      if (!co_await write_stream(*resp, head_only, keep_alive, version, start)) co_return;
      continue;
    }
    bool ok = co_await write_response(*resp, head_only, keep_alive, version);
    core_.record(req_.method, resp->status,
                 std::chrono::duration<double>(Clock::now() - start).count());
    if (!ok || !keep_alive) co_return;
  }
}

// While a long-poll is parked nothing reads the socket, so a client that disconnects would go
// unnoticed until the answer is written. So the socket is watched for readability: EOF or an error
// means the client is gone (a half-closed client counts as gone too), and the handler learns it
// through the sink's abandon path. Pipelined data ends the watch; the next read picks it up.
asio::awaitable<std::optional<Response>> Connection::await_response() {
  std::optional<Response> resp;
  parked_ = true;
  peer_gone_ = false;
  watch_peer();
  while (!resp) {
    if (forced_ || peer_gone_) {
      // A response stored meanwhile still wins (abandon() refuses then).
      if (!sink_->abandon()) resp = sink_->take_or_wait();
      if (!resp && forced_) resp = Response::error(503, "unavailable", "server is shutting down");
      break;
    }
    // Suspend without blocking a thread until ConnSink::deliver, on_force or the peer watch
    // cancels the timer.
    wake_.expires_at(Clock::time_point::max());
    co_await wake_.async_wait(kTok);
    resp = sink_->take_or_wait();
  }
  parked_ = false;
  ++watch_gen_;  // a watch completion already queued now does nothing
  if (watching_) {
    // Only the wait is outstanding on the socket here (no read or write while parked), so this
    // cancels just that; its handler sees operation_aborted and returns.
    watching_ = false;
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
  co_return resp;
}

void Connection::watch_peer() {
  watching_ = true;
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this(), gen = watch_gen_](
                         const boost::system::error_code& ec) { self->on_peer_readable(gen, ec); });
}

void Connection::on_peer_readable(uint64_t gen, const boost::system::error_code& ec) {
  if (gen != watch_gen_) return;  // an earlier park's watch
  watching_ = false;
  if (ec == asio::error::operation_aborted || closed_ || (!parked_ && !streaming_)) return;
  if (!ec && streaming_) {
    // An event-stream client has nothing more to say on this connection (the response ends with
    // it), so whatever it sends is discarded; only EOF or an error matters.
    std::array<char, 4096> scratch;
    ssize_t n = ::recv(socket_.native_handle(), scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
      watch_peer();
      return;
    }
  } else if (!ec) {
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // a pipelined request: stop watching (do not spin on readable data)
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      watch_peer();  // spurious readiness
      return;
    }
  }
  peer_gone_ = true;  // EOF, reset or another socket error
  wake_.cancel();
}

void Connection::wake() {
  if (state_ == State::kStreaming && stream_ && !stream_dropped_ &&
      EventStreamAccess::dropped(*stream_)) {
    // The producer dropped this slow consumer: abort a write that may be stuck on it now rather
    // than at its deadline.
    stream_dropped_ = true;
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
  wake_.cancel();
}

asio::awaitable<bool> Connection::write_stream(const Response& resp, bool head_only,
                                               bool keep_alive, unsigned version,
                                               Clock::time_point start) {
  stream_ = resp.stream;
  stream_dropped_ = false;
  // Detaches on every way out, including the frame being destroyed with the io_context.
  struct Detach {
    Connection& c;
    ~Detach() {
      c.streaming_ = false;
      if (auto s = std::move(c.stream_)) s->detach();
    }
  } detach{*this};
  const bool body = !head_only && status_has_body(resp.status);
  if (body) {
    keep_alive = false;  // the body ends with the connection
    // Wakes this connection on its strand when the producer queues data or closes. Holding hub->mu
    // keeps the io_context alive while posting, and `c` is released before the unlock (as in
    // ConnSink::deliver).
    stream_->set_notify([weak = weak_from_this(), hub = core_.hub] {
      std::lock_guard<std::mutex> hl(hub->mu);
      if (!hub->alive) return;
      if (auto c = weak.lock()) asio::post(c->executor(), [c] { c->wake(); });
    });
  }
  build_head(head_, resp, keep_alive, version, /*streaming=*/true);
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(head_), kTok);
  (void)n;
  // Recorded once the head is out (time to first byte): a stream may stay open for hours.
  core_.record(req_.method, resp.status,
               std::chrono::duration<double>(Clock::now() - start).count());
  if (ec) co_return false;
  if (!body) co_return keep_alive;
  co_await pump_stream();
  co_return false;
}

// Writes what the producer queues as it comes. Between writes the coroutine parks on wake_ (woken
// by the stream's notify, the peer watch, stop or force; expiring when a heartbeat is due) while
// the socket is watched for EOF, as in await_response. Each write runs under idle_timeout.
asio::awaitable<void> Connection::pump_stream() {
  EventStream& s = *stream_;
  const auto heartbeat = EventStreamAccess::heartbeat(s);
  const auto idle_timeout = core_.opts.idle_timeout;
  const auto stop_flush = std::min(idle_timeout, stop_flush_limit());
  state_ = State::kStreaming;
  streaming_ = true;
  peer_gone_ = false;
  set_deadline(Clock::time_point::max());
  watch_peer();
  auto last_write = Clock::now();
  std::string out;
  for (;;) {
    if (forced_ || peer_gone_ || stream_dropped_) break;
    // Stopping: no new events from now on; what is queued still goes out.
    if (core_.stopping.load()) s.close();
    const bool closed = s.closed();  // before take(): nothing can be queued after it
    out = s.take();
    if (out.empty()) {
      if (closed) break;
      if (heartbeat.count() > 0 && Clock::now() >= last_write + heartbeat) {
        out = ": ping\n\n";
      } else {
        wake_.expires_at(heartbeat.count() > 0 ? last_write + heartbeat : Clock::time_point::max());
        co_await wake_.async_wait(kTok);
        continue;
      }
    }
    timed_out_ = false;
    set_deadline(Clock::now() + (core_.stopping.load() ? stop_flush : idle_timeout));
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), kTok);
    (void)n;
    set_deadline(Clock::time_point::max());
    if (ec) break;  // the peer is gone, the write deadline passed, dropped or forced
    last_write = Clock::now();
  }
  streaming_ = false;
  ++watch_gen_;  // a watch completion already queued now does nothing
  boost::system::error_code ec;
  if (watching_) {
    watching_ = false;
    socket_.cancel(ec);  // only the watch is outstanding here
  }
  // Ended by the producer or by stop(): FIN right after the data, so the client sees the end.
  if (!forced_ && !peer_gone_ && !stream_dropped_) socket_.shutdown(tcp::socket::shutdown_send, ec);
}

void Connection::fill_request() {
  auto& msg = parser_->get();
  req_.method = to_method(msg.method(), {msg.method_string().data(), msg.method_string().size()});
  req_.target.assign(msg.target().data(), msg.target().size());
  req_.path.clear();
  req_.query.clear();
  req_.params.clear();
  req_.headers.clear();
  for (const auto& f : msg) {
    req_.headers.emplace_back(std::piecewise_construct,
                              std::forward_as_tuple(f.name_string().data(), f.name_string().size()),
                              std::forward_as_tuple(f.value().data(), f.value().size()));
  }
  req_.body = std::move(msg.body());
  req_.remote = remote_;
}

asio::awaitable<bool> Connection::write_response(const Response& resp, bool head_only,
                                                 bool keep_alive, unsigned version) {
  build_head(head_, resp, keep_alive, version);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head_), asio::const_buffer()};
  if (!head_only && status_has_body(resp.status)) bufs[1] = asio::buffer(resp.body);
  auto [ec, n] = co_await asio::async_write(socket_, bufs, kTok);
  (void)n;
  co_return !ec;
}

asio::awaitable<void> Connection::write_error_and_close(int status, std::string_view code,
                                                        std::string message) {
  const auto start = Clock::now();
  state_ = State::kWriting;
  set_deadline(start + core_.opts.idle_timeout);
  Response resp = Response::error(status, code, message);
  bool ok = co_await write_response(resp, false, false, 11);
  Method m = Method::kOther;
  if (parser_ && parser_->is_header_done()) {
    const auto& msg = parser_->get();
    m = to_method(msg.method(), {msg.method_string().data(), msg.method_string().size()});
  }
  core_.record(m, status, std::chrono::duration<double>(Clock::now() - start).count());
  if (ok) co_await linger_close();
}

// Closing right after an error response while the client is still sending (an oversized body, a
// request to a rejected connection) makes the kernel send RST, which can destroy the response in
// the client's receive buffer. So: half-close, then read and discard for a bounded time.
asio::awaitable<void> Connection::linger_close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  timed_out_ = false;
  set_deadline(Clock::now() + std::min<Clock::duration>(core_.opts.read_timeout, kMaxLinger));
  size_t drained = 0;
  while (drained < kMaxDrain && !forced_) {
    buffer_.consume(buffer_.size());
    auto [rec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadChunk), kTok);
    if (rec) break;
    drained += n;
  }
}

void Connection::on_stop() {
  if (state_ == State::kIdle) {
    boost::system::error_code ec;
    socket_.cancel(ec);
  } else if (state_ == State::kStreaming) {
    // The pump sees `stopping`, closes the stream and ends once the queue is written; a write in
    // progress (a finite deadline) gets the shorter stop deadline.
    if (deadline_ != Clock::time_point::max()) {
      set_deadline(std::min(deadline_, Clock::now() + stop_flush_limit()));
    }
    wake_.cancel();
  }
}

std::chrono::milliseconds Connection::stop_flush_limit() const {
  return std::min(core_.opts.shutdown_grace, kMaxStopFlush);
}

void Connection::on_force() {
  forced_ = true;
  boost::system::error_code ec;
  socket_.cancel(ec);
  wake_.cancel();
}

// Deadlines are a plain member; the timer is only re-armed when a deadline moves earlier than the
// pending expiry, so a busy keep-alive connection rarely touches the timer queue.
void Connection::set_deadline(Clock::time_point d) {
  deadline_ = d;
  if (d < armed_) arm(d);
}

void Connection::arm(Clock::time_point d) {
  armed_ = d;
  watchdog_.expires_at(d);  // cancels a pending wait, whose handler then does nothing
  watchdog_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec != asio::error::operation_aborted) self->on_watchdog();
  });
}

void Connection::on_watchdog() {
  if (closed_) return;
  if (deadline_ <= Clock::now()) {
    timed_out_ = true;
    deadline_ = armed_ = Clock::time_point::max();
    boost::system::error_code ec;
    socket_.cancel(ec);
    return;
  }
  if (deadline_ == Clock::time_point::max()) {
    armed_ = deadline_;  // nothing to wait for; the next set_deadline() arms again
    return;
  }
  arm(deadline_);
}

}  // namespace sd::net::detail
