// Server-sent events: the EventStream wire format and its transport contract on its own, then real
// HttpServer streams read with HttpClient::stream (or a raw socket that never reads).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sd/net/client.hpp"
#include "sd/net/server.hpp"
#include "sd/net/sse.hpp"
#include "test_util.hpp"

using namespace sd::net;
using namespace std::chrono_literals;
using sd::net::test::RawSocket;
using sd::net::test::RunningServer;
using sd::net::test::wait_until;

namespace {

// The streams handed out by GET /events, each pre-loaded with "hello" (id 1).
struct Streams {
  EventStreamOptions opts;
  std::mutex mu;
  std::vector<std::shared_ptr<EventStream>> all;  // guarded by mu
  std::atomic<int> ended{0};                      // on_closed calls
  std::atomic<int> failed{0};                     // the pre-loaded send() failed (never expected)
  ~Streams() { CHECK(failed == 0); }

  size_t count() {
    std::lock_guard<std::mutex> lk(mu);
    return all.size();
  }
  std::shared_ptr<EventStream> at(size_t i) {
    std::lock_guard<std::mutex> lk(mu);
    return all.at(i);
  }
};

Router make_router(Streams& streams) {
  Router r;
  r.add(Method::kGet, "/events", [&streams](Request&) {
    auto s = EventStream::create(streams.opts);
    s->on_closed([&streams] { ++streams.ended; });
    if (!s->send("hello", "world", "1"))
      ++streams.failed;  // no Catch assertions off the main thread
    std::lock_guard<std::mutex> lk(streams.mu);
    streams.all.push_back(s);
    return sse_response(s);
  });
  r.add(Method::kGet, "/who", [](Request& req) { return Response::text(200, req.remote); });
  return r;
}

// Runs HttpClient::stream on its own thread and collects the body as it arrives. keep_going (if
// set) sees everything received so far; false makes the client hang up.
class StreamReader {
 public:
  explicit StreamReader(uint16_t port, std::function<bool(const std::string&)> keep_going = {})
      : client_("127.0.0.1", port) {
    thread_ = std::thread([this, keep_going = std::move(keep_going)] {
      auto r = client_.stream(
          Method::kGet, "/events", {},
          [&](std::string_view piece) {
            std::lock_guard<std::mutex> lk(mu_);
            data_.append(piece);
            cv_.notify_all();
            return !keep_going || keep_going(data_);
          },
          20s);
      std::lock_guard<std::mutex> lk(mu_);
      result_.emplace(std::move(r));
      cv_.notify_all();
    });
  }
  ~StreamReader() { thread_.join(); }

  bool wait_for(const std::string& text, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return data_.find(text) != std::string::npos; });
  }
  bool wait_done(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return result_.has_value(); });
  }
  std::string data() {
    std::lock_guard<std::mutex> lk(mu_);
    return data_;
  }
  // After wait_done().
  const sd::Result<ClientResponse>& result() {
    std::lock_guard<std::mutex> lk(mu_);
    REQUIRE(result_.has_value());
    return *result_;
  }

 private:
  HttpClient client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string data_;                                  // guarded by mu_
  std::optional<sd::Result<ClientResponse>> result_;  // guarded by mu_
  std::thread thread_;
};

const std::string kHello = "event: hello\nid: 1\ndata: world\n\n";

}  // namespace

TEST_CASE("sse: EventStream wire format", "[unit][sse]") {
  auto s = EventStream::create();
  CHECK(s->take().empty());
  CHECK(s->send("seat", "a\nb", "7"));
  CHECK(s->send("", "plain"));
  CHECK(s->send("x", "crlf\r\ncr\rlf\nend\n"));
  CHECK(s->send("empty", ""));
  CHECK(s->send_comment("ping"));
  CHECK(s->send_comment("two\nlines"));
  CHECK(s->take() ==
        "event: seat\nid: 7\ndata: a\ndata: b\n\n"
        "data: plain\n\n"
        "event: x\ndata: crlf\ndata: cr\ndata: lf\ndata: end\ndata: \n\n"
        "event: empty\ndata: \n\n"
        ": ping\n\n"
        ": two\n: lines\n\n");
  CHECK(s->take().empty());

  // CR/LF in the event name or id: refused, nothing queued, the stream stays open.
  CHECK_FALSE(s->send("bad\revent", "data"));
  CHECK_FALSE(s->send("bad\nevent", "data"));
  CHECK_FALSE(s->send("ok", "data", "bad\nid"));
  CHECK_FALSE(s->send("ok", "data", "bad\rid"));
  CHECK(s->take().empty());
  CHECK_FALSE(s->closed());

  // close(): later sends fail, what was queued can still be taken; without a transport the
  // stream ends at once, so on_closed runs now (and immediately when registered later).
  int ended = 0;
  s->on_closed([&] { ++ended; });
  CHECK(s->send("last", "1"));
  s->close();
  CHECK(s->closed());
  CHECK(ended == 1);
  CHECK_FALSE(s->send("late", "2"));
  CHECK_FALSE(s->send_comment("late"));
  CHECK(s->take() == "event: last\ndata: 1\n\n");
  s->on_closed([&] { ++ended; });
  CHECK(ended == 2);
  s->close();
  s->detach();
  CHECK(ended == 2);
}

TEST_CASE("sse: EventStream buffer limit closes the stream", "[unit][sse]") {
  EventStreamOptions o;
  o.max_buffered_bytes = 100;
  auto s = EventStream::create(o);
  int ended = 0;
  s->on_closed([&] { ++ended; });
  const std::string chunk(30, 'x');  // "data: " + 30 + "\n\n" = 38 bytes
  CHECK(s->send("", chunk));
  CHECK(s->send("", chunk));
  CHECK(s->take().size() == 76);  // taking makes room again
  CHECK(s->send("", chunk));
  CHECK(s->send("", chunk));
  CHECK_FALSE(s->closed());
  CHECK_FALSE(s->send("", chunk));  // 114 > 100: the consumer is dropped
  CHECK(s->closed());
  CHECK(ended == 1);
  CHECK(s->take().empty());  // what was queued is dropped with it
  CHECK_FALSE(s->send("", "x"));
}

TEST_CASE("sse: EventStream transport side: notify, detach, on_closed", "[unit][sse]") {
  auto s = EventStream::create();
  std::atomic<int> notified{0};
  int ended = 0;
  s->on_closed([&] { ++ended; });
  CHECK(s->send("a", "1"));  // queued before a transport attached: taken on its first take()
  s->set_notify([&] { ++notified; });
  CHECK(s->send("b", "2"));
  CHECK(notified == 0);  // the queue was not empty: the transport has yet to take it anyway
  CHECK(s->take() == "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n");
  CHECK(s->send("c", "3"));
  CHECK(notified == 1);  // empty -> non-empty
  CHECK(s->send_comment("x"));
  CHECK(notified == 1);
  CHECK(s->take() == "event: c\ndata: 3\n\n: x\n\n");

  // With a transport, close() only signals it; the stream ends when the transport detaches.
  s->close();
  CHECK(notified == 2);
  CHECK(s->closed());
  CHECK(ended == 0);
  CHECK_FALSE(s->send("d", "4"));
  s->detach();
  CHECK(ended == 1);
  s->detach();
  CHECK(ended == 1);
  s->on_closed([&] { ++ended; });
  CHECK(ended == 2);
  CHECK(s->take().empty());

  // A transport that reports the client gone: detach closes and drops the queue.
  auto t = EventStream::create();
  t->set_notify([] {});
  t->on_closed([&] { ++ended; });
  CHECK(t->send("e", "5"));
  t->detach();
  CHECK(ended == 3);
  CHECK(t->closed());
  CHECK(t->take().empty());
  CHECK_FALSE(t->send("f", "6"));

  // Overflow with a transport: signalled, not ended until the transport detaches.
  EventStreamOptions o;
  o.max_buffered_bytes = 10;
  auto u = EventStream::create(o);
  int u_notified = 0;
  u->set_notify([&] { ++u_notified; });
  u->on_closed([&] { ++ended; });
  CHECK_FALSE(u->send("", "more than ten bytes"));
  CHECK(u->closed());
  CHECK(u_notified == 1);
  CHECK(ended == 3);
  u->detach();
  CHECK(ended == 4);
}

TEST_CASE("sse: server streams events in order, close() ends the response", "[unit][sse]") {
  Streams streams;
  RunningServer rs(make_router(streams));
  StreamReader reader(rs.port());
  REQUIRE(wait_until([&] { return streams.count() == 1; }));
  auto s = streams.at(0);
  REQUIRE(reader.wait_for(kHello));
  CHECK(s->send("seat", "row 1\nrow 2", "2"));
  CHECK(s->send_comment("note"));
  CHECK(s->send("", "{\"n\":3}", "3"));
  const std::string expected = kHello + "event: seat\nid: 2\ndata: row 1\ndata: row 2\n\n" +
                               ": note\n\n" + "id: 3\ndata: {\"n\":3}\n\n";
  REQUIRE(reader.wait_for(expected));
  CHECK(streams.ended == 0);

  s->close();
  REQUIRE(reader.wait_done());
  const auto& r = reader.result();
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  REQUIRE(r->header("content-type"));
  CHECK(*r->header("content-type") == "text/event-stream");
  REQUIRE(r->header("cache-control"));
  CHECK(*r->header("cache-control") == "no-cache");
  REQUIRE(r->header("x-accel-buffering"));
  CHECK(*r->header("x-accel-buffering") == "no");
  REQUIRE(r->header("connection"));
  CHECK(*r->header("connection") == "close");
  CHECK(r->header("content-length") == nullptr);
  CHECK(r->header("transfer-encoding") == nullptr);
  CHECK(reader.data() == expected);
  CHECK(wait_until([&] { return streams.ended == 1; }));

  // Recorded like any response (once its head was written).
  HttpClient c("127.0.0.1", rs.port());
  auto m = c.get("/metrics");
  REQUIRE(m.is_ok());
  CHECK(m->body.find("http_requests_total{method=\"GET\",code=\"200\"} 1") != std::string::npos);
}

TEST_CASE("sse: events sent from other threads arrive in order", "[unit][sse]") {
  Streams streams;
  RunningServer rs(make_router(streams));
  StreamReader reader(rs.port());
  REQUIRE(wait_until([&] { return streams.count() == 1; }));
  auto s = streams.at(0);
  REQUIRE(reader.wait_for(kHello));  // the response has started
  constexpr int kEvents = 500;
  std::atomic<int> refused{0};
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i) {
      if (!s->send("n", std::to_string(i), std::to_string(i + 2))) ++refused;
      if (i % 50 == 0) std::this_thread::yield();
    }
    s->close();
  });
  producer.join();
  CHECK(refused == 0);
  REQUIRE(reader.wait_done());
  REQUIRE(reader.result().is_ok());
  std::string expected = kHello;
  for (int i = 0; i < kEvents; ++i) {
    expected += "event: n\nid: " + std::to_string(i + 2) + "\ndata: " + std::to_string(i) + "\n\n";
  }
  CHECK(reader.data() == expected);
  CHECK(wait_until([&] { return streams.ended == 1; }));
}

TEST_CASE("sse: client disconnect ends the stream: on_closed runs, send() fails", "[unit][sse]") {
  Streams streams;
  RunningServer rs(make_router(streams));

  SECTION("HttpClient hangs up") {
    StreamReader reader(
        rs.port(), [](const std::string& all) { return all.find("bye") == std::string::npos; });
    REQUIRE(wait_until([&] { return streams.count() == 1; }));
    auto s = streams.at(0);
    REQUIRE(reader.wait_for(kHello));
    CHECK(s->send("", "bye"));
    REQUIRE(reader.wait_done());
    REQUIRE(wait_until([&] { return streams.ended == 1; }));
    CHECK(s->closed());
    CHECK_FALSE(s->send("", "anyone?"));
  }
  SECTION("raw socket closes while the stream is idle") {
    RawSocket sock(rs.port());
    REQUIRE(sock.connected());
    REQUIRE(sock.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(wait_until([&] { return streams.count() == 1; }));
    auto s = streams.at(0);
    std::string got;
    REQUIRE(wait_until([&] {
      got += sock.read_all(20ms);
      return got.find(kHello) != std::string::npos;
    }));
    CHECK(got.find("HTTP/1.1 200 OK\r\n") == 0);
    sock.close();
    REQUIRE(wait_until([&] { return streams.ended == 1; }));
    CHECK_FALSE(s->send("", "anyone?"));
  }
  // Either way the server is healthy and the connection is gone.
  CHECK(wait_until(
      [&] { return rs.server().metrics().gauge("http_connections_active", "").value() == 0; }));
}

TEST_CASE("sse: idle streams get heartbeat comments", "[unit][sse]") {
  Streams streams;
  streams.opts.heartbeat = 50ms;
  RunningServer rs(make_router(streams));
  StreamReader reader(rs.port());
  REQUIRE(wait_until([&] { return streams.count() == 1; }));
  REQUIRE(reader.wait_for(kHello + ": ping\n\n: ping\n\n"));
  auto s = streams.at(0);
  CHECK(s->send("after", "ping"));
  REQUIRE(reader.wait_for("event: after\ndata: ping\n\n"));
  s->close();
  REQUIRE(reader.wait_done());
  CHECK(reader.result().is_ok());
}

TEST_CASE("sse: a consumer that does not read is dropped at max_buffered_bytes", "[unit][sse]") {
  Streams streams;
  streams.opts.max_buffered_bytes = 256 << 10;
  streams.opts.heartbeat = 0ms;
  RunningServer rs(make_router(streams));  // idle_timeout (the write deadline) stays at 60 s
  RawSocket sock(rs.port());
  REQUIRE(sock.connected());
  REQUIRE(sock.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(wait_until([&] { return streams.count() == 1; }));
  auto s = streams.at(0);
  const std::string big(64 << 10, 'z');
  size_t sent = 0;
  // Paced so that the server keeps up until the kernel buffers (a few MB on loopback) are full and
  // its write stalls; then the queue fills up.
  while (s->send("bulk", big)) {
    sent += big.size();
    REQUIRE(sent < (1u << 30));
    std::this_thread::sleep_for(1ms);
  }
  CHECK(s->closed());
  // Dropped promptly, not at the write deadline: the stuck write is aborted.
  REQUIRE(wait_until([&] { return streams.ended == 1; }));
  std::string got = sock.read_all(5s);
  CHECK(sock.eof());
  CHECK(got.find("HTTP/1.1 200 OK\r\n") == 0);
  CHECK(got.size() < sent + 1024);
}

TEST_CASE("sse: stop() with open streams returns promptly", "[unit][sse]") {
  Streams streams;
  ServerOptions so;
  so.shutdown_grace = 10s;
  auto rs = std::make_unique<RunningServer>(make_router(streams), so);
  StreamReader a(rs->port());
  StreamReader b(rs->port());
  REQUIRE(wait_until([&] { return streams.count() == 2; }));
  REQUIRE(a.wait_for(kHello));
  REQUIRE(b.wait_for(kHello));
  CHECK(streams.at(0)->send("queued", "before stop"));

  const auto t0 = std::chrono::steady_clock::now();
  rs->join();  // stop() and wait for run() to return
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 3s);

  REQUIRE(a.wait_done());
  REQUIRE(b.wait_done());
  CHECK(a.result().is_ok());  // a clean end of the response (EOF), not an error
  CHECK(b.result().is_ok());
  CHECK(streams.ended == 2);
  CHECK(streams.at(0)->closed());
  CHECK_FALSE(streams.at(1)->send("late", "x"));
  const std::string all = a.data() + b.data();
  CHECK(all.find("event: queued\ndata: before stop\n\n") != std::string::npos);
  rs.reset();
}

TEST_CASE("sse: stop() is not held up by a stream whose client does not read", "[unit][sse]") {
  Streams streams;
  streams.opts.max_buffered_bytes = 256 << 20;
  ServerOptions so;
  so.shutdown_grace = 10s;  // idle_timeout (the write deadline) stays at 60 s
  auto rs = std::make_unique<RunningServer>(make_router(streams), so);
  RawSocket sock(rs->port());
  REQUIRE(sock.connected());
  REQUIRE(sock.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(wait_until([&] { return streams.count() == 1; }));
  auto s = streams.at(0);
  // Far more than the loopback socket buffers hold: the server's write stalls, the rest queues.
  const std::string big(64 << 10, 'z');
  for (int i = 0; i < 512; ++i) REQUIRE(s->send("bulk", big));

  const auto t0 = std::chrono::steady_clock::now();
  rs->join();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 3s);  // the stuck write gets at most 1 s once stopping
  CHECK(streams.ended == 1);
  CHECK_FALSE(s->send("late", "x"));
  rs.reset();
}

TEST_CASE("sse: keep-alive requests work on other connections while streams are open",
          "[unit][sse]") {
  Streams streams;
  RunningServer rs(make_router(streams));
  StreamReader a(rs.port());
  StreamReader b(rs.port());
  REQUIRE(wait_until([&] { return streams.count() == 2; }));
  HttpClient c("127.0.0.1", rs.port());
  std::string first;
  for (int i = 0; i < 50; ++i) {
    auto r = c.get("/who");
    REQUIRE(r.is_ok());
    REQUIRE(r->status == 200);
    if (i == 0) first = r->body;
    REQUIRE(r->body == first);  // the same connection, reused
    if (i % 10 == 0) CHECK(streams.at(static_cast<size_t>(i / 10) % 2)->send("tick", "x"));
  }
  CHECK(a.wait_for("event: tick\ndata: x\n\n"));
  CHECK(b.wait_for("event: tick\ndata: x\n\n"));
  streams.at(0)->close();
  streams.at(1)->close();
  REQUIRE(a.wait_done());
  REQUIRE(b.wait_done());
  CHECK(c.get("/who")->body == first);
}

TEST_CASE("sse: HEAD gets the head only, and the stream is ended", "[unit][sse]") {
  Streams streams;
  RunningServer rs(make_router(streams));
  HttpClient c("127.0.0.1", rs.port());
  auto h = c.request(Method::kHead, "/events");
  REQUIRE(h.is_ok());
  CHECK(h->status == 200);
  REQUIRE(h->header("content-type"));
  CHECK(*h->header("content-type") == "text/event-stream");
  CHECK(h->body.empty());
  REQUIRE(wait_until([&] { return streams.ended == 1; }));
  CHECK_FALSE(streams.at(0)->send("x", "y"));
  // HEAD leaves the connection usable.
  auto w = c.get("/who");
  REQUIRE(w.is_ok());
  CHECK(w->status == 200);
}
