#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"
#include "sd/net/server.hpp"
#include "test_util.hpp"

using namespace sd::net;
using namespace std::chrono_literals;
using sd::net::test::RawSocket;
using sd::net::test::RunningServer;
using sd::net::test::wait_until;

namespace {

// Long-poll parking lot: async handlers park their Responder here; release() answers them.
struct Parked {
  std::mutex mu;
  std::vector<Responder> waiting;  // guarded by mu
  std::atomic<int> abandoned{0};   // on_abandoned callbacks of /wait requests
  size_t count() {
    std::lock_guard<std::mutex> lk(mu);
    return waiting.size();
  }
  size_t release(const Response& r) {
    std::vector<Responder> w;
    {
      std::lock_guard<std::mutex> lk(mu);
      w.swap(waiting);
    }
    for (auto& x : w) x.send(r);
    return w.size();
  }
};

Router make_router(Parked& parked) {
  Router r;
  r.add(Method::kGet, "/who", [](Request& req) { return Response::text(200, req.remote); });
  r.add(Method::kPost, "/echo", [](Request& req) { return Response::text(200, req.body); });
  r.add(Method::kGet, "/param/{p}",
        [](Request& req) { return Response::text(200, req.param("p")); });
  r.add(Method::kGet, "/throw", [](Request&) -> Response { throw std::runtime_error("kaput"); });
  r.add_async(Method::kGet, "/wait", [&parked](Request&, Responder out) {
    out.on_abandoned([&parked] { ++parked.abandoned; });
    std::lock_guard<std::mutex> lk(parked.mu);
    parked.waiting.push_back(std::move(out));
  });
  r.add(Method::kPost, "/release", [&parked](Request&) {
    size_t n = parked.release(Response::json(200, {{"released", true}}));
    return Response::json(200, {{"count", n}});
  });
  return r;
}

std::string error_of(const ClientResponse& r) {
  auto j = r.json();
  REQUIRE(j.is_ok());
  return j->at("error").get<std::string>();
}

double active_connections(HttpServer& s) {
  return s.metrics().gauge("http_connections_active", "").value();
}

}  // namespace

TEST_CASE("server: keep-alive reuse / healthz and metrics", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  HttpClient client("127.0.0.1", rs.port());
  std::string first;
  for (int i = 0; i < 200; ++i) {
    auto r = client.get("/who");
    REQUIRE(r.is_ok());
    REQUIRE(r->status == 200);
    if (i == 0) first = r->body;
    REQUIRE(r->body == first);  // same client port: the connection was reused
  }
  auto h = client.get("/healthz");
  REQUIRE(h.is_ok());
  CHECK(h->status == 200);
  CHECK(h->json().value() == nlohmann::json{{"status", "ok"}});
  CHECK(*h->header("content-type") == "application/json");
  CHECK(*h->header("server") == "sd-net");

  auto m = client.get("/metrics");
  REQUIRE(m.is_ok());
  CHECK(m->status == 200);
  CHECK(m->header("Content-Type")->find("text/plain; version=0.0.4") == 0);
  CHECK(m->body.find("http_requests_total{method=\"GET\",code=\"200\"} 201") != std::string::npos);
  CHECK(m->body.find("# TYPE http_request_duration_seconds histogram") != std::string::npos);
  CHECK(m->body.find("http_connections_active 1") != std::string::npos);
}

TEST_CASE("server: 404/405/500 are JSON errors / params are decoded", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  HttpClient client("127.0.0.1", rs.port());
  auto nf = client.get("/missing");
  REQUIRE(nf.is_ok());
  CHECK(nf->status == 404);
  CHECK(error_of(*nf) == "not_found");
  auto na = client.del("/echo");
  REQUIRE(na.is_ok());
  CHECK(na->status == 405);
  CHECK(error_of(*na) == "method_not_allowed");
  CHECK(*na->header("allow") == "POST");
  auto ex = client.get("/throw");
  REQUIRE(ex.is_ok());
  CHECK(ex->status == 500);
  CHECK(error_of(*ex) == "internal");
  auto p = client.get("/param/a%2Fb%20c");
  REQUIRE(p.is_ok());
  CHECK(p->body == "a/b c");
  auto bad = client.get("/param/a%zz");
  REQUIRE(bad.is_ok());
  CHECK(bad->status == 400);
  // The connection survived all of that.
  CHECK(client.get("/healthz")->status == 200);
}

TEST_CASE("server: oversized body gets 413 and the client recovers", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  HttpClient client("127.0.0.1", rs.port());
  auto ok = client.request(Method::kPost, "/echo", std::string(1000, 'y'));
  REQUIRE(ok.is_ok());
  CHECK(ok->body.size() == 1000);
  auto r = client.request(Method::kPost, "/echo", std::string((1 << 20) + (1 << 20), 'x'));
  REQUIRE(r.is_ok());
  CHECK(r->status == 413);
  CHECK(error_of(*r) == "payload_too_large");
  auto again = client.get("/healthz");
  REQUIRE(again.is_ok());
  CHECK(again->status == 200);
}

TEST_CASE("server: long-poll answered by another request", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked), ServerOptions{.threads = 2});
  sd::Result<ClientResponse> waited = sd::unavailable("not run");
  std::thread waiter([&] {
    HttpClient c("127.0.0.1", rs.port());
    waited = c.get("/wait");
  });
  REQUIRE(wait_until([&] { return parked.count() == 1; }));
  HttpClient other("127.0.0.1", rs.port());
  auto rel = other.post_json("/release", nlohmann::json::object());
  REQUIRE(rel.is_ok());
  CHECK(rel->json().value()["count"] == 1);
  waiter.join();
  REQUIRE(waited.is_ok());
  CHECK(waited->status == 200);
  CHECK(waited->json().value()["released"] == true);
}

TEST_CASE("server: long-poll answered by run_after / cancelled timers never fire",
          "[unit][server]") {
  Router r;
  HttpServer* srv = nullptr;
  std::mutex mu;
  std::vector<TimerHandle> timers;  // guarded by mu
  r.add_async(Method::kGet, "/later", [&](Request&, Responder out) {
    auto shared = std::make_shared<Responder>(std::move(out));
    auto h = srv->run_after(50ms, [shared] { shared->send(Response::text(200, "late")); });
    std::lock_guard<std::mutex> lk(mu);
    timers.push_back(std::move(h));
  });
  RunningServer rs(std::move(r));
  srv = &rs.server();
  HttpClient client("127.0.0.1", rs.port());
  auto t0 = std::chrono::steady_clock::now();
  auto resp = client.get("/later");
  REQUIRE(resp.is_ok());
  CHECK(resp->body == "late");
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);

  std::atomic<int> fired{0};
  auto cancelled = srv->run_after(50ms, [&] { fired += 1; });
  cancelled.cancel();
  {
    auto dropped = srv->run_after(50ms, [&] { fired += 10; });
  }
  auto kept = srv->run_after(20ms, [&] { fired += 100; });
  std::atomic<bool> posted{false};
  srv->post([&] { posted = true; });
  REQUIRE(wait_until([&] { return fired.load() >= 100 && posted.load(); }));
  std::this_thread::sleep_for(150ms);
  CHECK(fired.load() == 100);
}

TEST_CASE("server: responder sent after the client disconnected is a no-op", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  {
    RawSocket raw(rs.port());
    REQUIRE(raw.connected());
    REQUIRE(raw.send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(wait_until([&] { return parked.count() == 1; }));
  }
  std::this_thread::sleep_for(50ms);
  CHECK(parked.release(Response::text(200, "too late")) == 1);
  HttpClient client("127.0.0.1", rs.port());
  CHECK(client.get("/healthz")->status == 200);
}

TEST_CASE("server: a long-poll client that disconnects fires on_abandoned once", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  RawSocket raw(rs.port());
  REQUIRE(raw.send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(wait_until([&] { return parked.count() == 1; }));
  std::this_thread::sleep_for(20ms);
  CHECK(parked.abandoned.load() == 0);
  raw.close();
  CHECK(wait_until([&] { return parked.abandoned.load() == 1; }, 1s));
  CHECK(parked.release(Response::text(200, "nobody")) == 1);  // harmless
  HttpClient client("127.0.0.1", rs.port());
  auto m = client.get("/metrics");
  REQUIRE(m.is_ok());
  CHECK(m->body.find("http_requests_total{method=\"GET\",code=\"499\"} 1") != std::string::npos);
  CHECK(parked.abandoned.load() == 1);
}

TEST_CASE("server: an answered long-poll never fires on_abandoned", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  {
    RawSocket raw(rs.port());
    REQUIRE(raw.send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(wait_until([&] { return parked.count() == 1; }));
    parked.release(Response::text(200, "answered"));
    std::string got = raw.read_all(300ms);
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(got.find("answered") != std::string::npos);
    // Same connection, next request: the old watch must not disturb it.
    REQUIRE(raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(raw.read_all(300ms).find("{\"status\":\"ok\"}") != std::string::npos);
  }  // closes after the answer
  std::this_thread::sleep_for(100ms);
  CHECK(parked.abandoned.load() == 0);
}

TEST_CASE("server: a pipelined request while parked does not abandon the long-poll",
          "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  RawSocket raw(rs.port());
  REQUIRE(raw.send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(wait_until([&] { return parked.count() == 1; }));
  REQUIRE(
      raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
               "Connection: close\r\n\r\nsecond"));
  auto cpu = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  };
  double cpu0 = cpu();
  std::this_thread::sleep_for(200ms);
  CHECK(cpu() - cpu0 < 50.0);  // the watch stopped instead of spinning on the readable socket
  CHECK(parked.abandoned.load() == 0);
  CHECK(parked.release(Response::text(200, "first")) == 1);
  std::string got = raw.read_all(3s);
  auto first = got.find("\r\n\r\nfirst");
  auto second = got.find("\r\n\r\nsecond");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);
  CHECK(raw.eof());
  CHECK(parked.abandoned.load() == 0);
}

TEST_CASE("server: partial request times out with 408", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked), ServerOptions{.read_timeout = 200ms});
  RawSocket raw(rs.port());
  REQUIRE(raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  auto t0 = std::chrono::steady_clock::now();
  std::string got = raw.read_all(3s);
  CHECK(got.rfind("HTTP/1.1 408 ", 0) == 0);
  CHECK(got.find("\"error\":\"request_timeout\"") != std::string::npos);
  CHECK(raw.eof());
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("server: malformed HTTP and huge headers", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  {
    RawSocket raw(rs.port());
    REQUIRE(raw.send("NOT HTTP\r\n\r\n"));
    std::string got = raw.read_all(3s);
    CHECK(got.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(got.find("Connection: close") != std::string::npos);
    CHECK(raw.eof());
  }
  {
    RawSocket raw(rs.port());
    REQUIRE(raw.send("GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"));
    std::string got = raw.read_all(3s);
    CHECK(got.rfind("HTTP/1.1 431 ", 0) == 0);
  }
}

TEST_CASE("server: pipelining / HTTP/1.0 and Expect: 100-continue", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked));
  {
    RawSocket raw(rs.port());
    REQUIRE(
        raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n"
                 "\r\nabc"));
    std::string got = raw.read_all(3s);
    CHECK(got.find("{\"status\":\"ok\"}") != std::string::npos);
    CHECK(got.size() >= 3);
    CHECK(got.substr(got.size() - 3) == "abc");
    CHECK(raw.eof());
  }
  {
    RawSocket raw(rs.port());
    REQUIRE(raw.send("GET /healthz HTTP/1.0\r\n\r\n"));
    std::string got = raw.read_all(3s);
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(raw.eof());
  }
  {
    RawSocket raw(rs.port());
    REQUIRE(
        raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                 "Expect: 100-continue\r\n\r\n"));
    std::string got = raw.read_all(300ms);
    CHECK(got == "HTTP/1.1 100 Continue\r\n\r\n");
    REQUIRE(raw.send("hi"));
    got = raw.read_all(300ms);
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(got.substr(got.size() - 2) == "hi");
  }
}

TEST_CASE("server: connections beyond max_connections get 503", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked), ServerOptions{.max_connections = 2});
  RawSocket a(rs.port()), b(rs.port());
  REQUIRE(wait_until([&] { return active_connections(rs.server()) == 2; }));
  HttpClient client("127.0.0.1", rs.port());
  auto r = client.get("/healthz");
  REQUIRE(r.is_ok());
  CHECK(r->status == 503);
  CHECK(error_of(*r) == "unavailable");
  a.close();
  REQUIRE(wait_until([&] { return active_connections(rs.server()) == 1; }));
  auto ok = client.get("/healthz");
  REQUIRE(ok.is_ok());
  CHECK(ok->status == 200);
}

TEST_CASE("server: idle keep-alive connections are closed / the client reconnects",
          "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked), ServerOptions{.idle_timeout = 150ms});
  RawSocket raw(rs.port());
  std::string got = raw.read_all(3s);
  CHECK(got.empty());
  CHECK(raw.eof());

  HttpClient client("127.0.0.1", rs.port());
  auto first = client.get("/who");
  REQUIRE(first.is_ok());
  std::this_thread::sleep_for(400ms);  // the server closes the idle connection meanwhile
  auto second = client.get("/who");
  REQUIRE(second.is_ok());
  CHECK(second->status == 200);
  CHECK(second->body != first->body);  // a new connection (new client port)
}

TEST_CASE("server: stop() with a pending long-poll returns from run()", "[unit][server]") {
  Parked parked;
  sd::Result<ClientResponse> waited = sd::unavailable("not run");
  std::thread waiter;
  {
    RunningServer rs(make_router(parked), ServerOptions{.shutdown_grace = 200ms});
    waiter = std::thread([&, port = rs.port()] {
      HttpClient c("127.0.0.1", port);
      waited = c.get("/wait");
    });
    REQUIRE(wait_until([&] { return parked.count() == 1; }));
    auto t0 = std::chrono::steady_clock::now();
    rs.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  }
  waiter.join();
  REQUIRE(waited.is_ok());
  CHECK(waited->status == 503);
  CHECK(parked.abandoned.load() == 1);  // the force-close told the handler too
  // The Responder outlived the server: sending must be harmless.
  CHECK(parked.release(Response::text(200, "after")) == 1);
}

TEST_CASE("server: in-flight request finishes during graceful stop", "[unit][server]") {
  Parked parked;
  sd::Result<ClientResponse> waited = sd::unavailable("not run");
  RunningServer rs(make_router(parked), ServerOptions{.shutdown_grace = 5s});
  std::thread waiter([&, port = rs.port()] {
    HttpClient c("127.0.0.1", port);
    waited = c.get("/wait");
  });
  REQUIRE(wait_until([&] { return parked.count() == 1; }));
  std::thread stopper([&] { rs.join(); });
  std::this_thread::sleep_for(100ms);
  parked.release(Response::text(200, "finished"));
  waiter.join();
  stopper.join();
  REQUIRE(waited.is_ok());
  CHECK(waited->status == 200);
  CHECK(waited->body == "finished");
  CHECK(*waited->header("connection") == "close");
}

TEST_CASE("server: many concurrent clients on two io threads", "[unit][server]") {
  Parked parked;
  RunningServer rs(make_router(parked), ServerOptions{.threads = 2});
  constexpr int kClients = 8, kRequests = 150;
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int c = 0; c < kClients; ++c) {
    ts.emplace_back([&, c] {
      HttpClient client("127.0.0.1", rs.port());
      for (int i = 0; i < kRequests; ++i) {
        std::string body = "client " + std::to_string(c) + " request " + std::to_string(i);
        auto r = client.request(Method::kPost, "/echo", body);
        if (r.is_ok() && r->status == 200 && r->body == body) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(ok.load() == kClients * kRequests);
}

TEST_CASE("client: transport errors and timeouts map to status codes", "[unit][client]") {
  Parked parked;
  uint16_t dead_port = 0;
  {
    RunningServer tmp(make_router(parked));
    dead_port = tmp.port();
  }
  HttpClient dead("127.0.0.1", dead_port);
  auto refused = dead.get("/");
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == sd::Code::kUnavailable);

  RunningServer rs(make_router(parked));
  HttpClient client("127.0.0.1", rs.port());
  auto slow = client.request(Method::kGet, "/wait", {}, {}, 150ms);
  REQUIRE_FALSE(slow.is_ok());
  CHECK(slow.status().code() == sd::Code::kDeadlineExceeded);
  REQUIRE(wait_until([&] { return parked.count() == 1; }));
  parked.release(Response::text(200, "nobody listens"));
  auto after = client.get("/healthz");  // a fresh connection after the dropped one
  REQUIRE(after.is_ok());
  CHECK(after->status == 200);

  HttpClient named("localhost", rs.port());
  auto viadns = named.get("/healthz");
  REQUIRE(viadns.is_ok());
  CHECK(viadns->status == 200);
}

TEST_CASE("server: SIGTERM triggers a graceful stop when handle_signals is set", "[unit][server]") {
  Parked parked;
  HttpServer server(ServerOptions{.handle_signals = true}, make_router(parked));
  REQUIRE(server.start().is_ok());
  std::atomic<bool> returned{false};
  std::thread t([&] {
    server.run();
    returned = true;
  });
  HttpClient client("127.0.0.1", server.port());
  REQUIRE(client.get("/healthz")->status == 200);
  std::raise(SIGTERM);  // the signal_set is installed by start(), so this cannot kill the test
  CHECK(wait_until([&] { return returned.load(); }));
  if (!returned) server.stop();
  t.join();
}
