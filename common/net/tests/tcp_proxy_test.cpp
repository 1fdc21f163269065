// TcpProxy in front of a real sd::net server on loopback: pass-through, blackhole (partition and
// heal), reset.

#include "sd/net/tcp_proxy.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "sd/net/client.hpp"
#include "sd/net/server.hpp"
#include "test_util.hpp"

using namespace sd::net;
using namespace std::chrono_literals;
using sd::net::test::RawSocket;
using sd::net::test::RunningServer;

namespace {

Router echo_router() {
  Router r;
  r.add(Method::kGet, "/who", [](Request&) { return Response::text(200, "hello"); });
  r.add(Method::kPost, "/echo", [](Request& req) { return Response::text(200, req.body); });
  return r;
}

std::unique_ptr<TcpProxy> proxy_to(uint16_t port) {
  auto p = TcpProxy::start("127.0.0.1", port);
  REQUIRE(p.is_ok());
  return std::move(*p);
}

ClientOptions short_timeouts() {
  ClientOptions o;
  o.connect_timeout = 1000ms;
  o.request_timeout = 300ms;
  return o;
}

const std::string kKeepAlive = "GET /who HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kClose = "GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("tcp proxy forwards requests both ways", "[unit][proxy]") {
  RunningServer server(echo_router());
  auto proxy = proxy_to(server.port());
  REQUIRE(proxy->port() != 0);
  REQUIRE(proxy->port() != server.port());
  REQUIRE(proxy->mode() == TcpProxy::Mode::kPass);

  HttpClient c("127.0.0.1", proxy->port());
  for (int i = 0; i < 5; ++i) {  // keep-alive through the proxy
    auto r = c.get("/who");
    REQUIRE(r.is_ok());
    REQUIRE(r->status == 200);
    REQUIRE(r->body == "hello");
  }
  std::string big(300'000, 'x');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  auto r = c.request(Method::kPost, "/echo", big);
  REQUIRE(r.is_ok());
  REQUIRE(r->status == 200);
  REQUIRE(r->body == big);

  // A half-close from the client still gets the whole response.
  RawSocket s(proxy->port());
  REQUIRE(s.connected());
  REQUIRE(s.send(kClose));
  std::string got = s.read_all(3s);
  REQUIRE(got.find("200 OK") != std::string::npos);
  REQUIRE(s.eof());
}

TEST_CASE("tcp proxy blackhole stalls traffic until healed", "[unit][proxy]") {
  RunningServer server(echo_router());
  auto proxy = proxy_to(server.port());
  HttpClient c("127.0.0.1", proxy->port(), short_timeouts());
  REQUIRE(c.get("/who").is_ok());

  // An established connection that continues after the heal.
  RawSocket open(proxy->port());
  REQUIRE(open.send(kKeepAlive));
  REQUIRE(open.read_all(300ms).find("200 OK") != std::string::npos);

  proxy->set_mode(TcpProxy::Mode::kBlackhole);
  REQUIRE(proxy->mode() == TcpProxy::Mode::kBlackhole);
  auto timed_out = c.get("/who");
  REQUIRE_FALSE(timed_out.is_ok());

  REQUIRE(open.send(kClose));
  REQUIRE(open.read_all(300ms).empty());
  REQUIRE_FALSE(open.eof());
  // A new connection is accepted but goes nowhere.
  RawSocket fresh(proxy->port());
  REQUIRE(fresh.connected());
  REQUIRE(fresh.send(kClose));
  REQUIRE(fresh.read_all(300ms).empty());
  REQUIRE_FALSE(fresh.eof());

  proxy->set_mode(TcpProxy::Mode::kPass);
  std::string late = open.read_all(3s);
  REQUIRE(late.find("200 OK") != std::string::npos);
  REQUIRE(open.eof());
  REQUIRE(fresh.read_all(3s).find("200 OK") != std::string::npos);
  auto r = c.get("/who");
  REQUIRE(r.is_ok());
  REQUIRE(r->status == 200);
}

TEST_CASE("tcp proxy reset breaks connections and refuses new ones", "[unit][proxy]") {
  RunningServer server(echo_router());
  auto proxy = proxy_to(server.port());
  RawSocket open(proxy->port());
  REQUIRE(open.send(kKeepAlive));
  REQUIRE(open.read_all(300ms).find("200 OK") != std::string::npos);
  REQUIRE_FALSE(open.eof());

  proxy->set_mode(TcpProxy::Mode::kReset);
  auto t0 = std::chrono::steady_clock::now();
  (void)open.read_all(3s);
  REQUIRE(open.eof());
  REQUIRE(std::chrono::steady_clock::now() - t0 < 2s);

  RawSocket refused(proxy->port());
  (void)refused.send(kClose);
  REQUIRE(refused.read_all(3s).empty());
  REQUIRE(refused.eof());
  HttpClient c("127.0.0.1", proxy->port(), short_timeouts());
  REQUIRE_FALSE(c.get("/who").is_ok());

  proxy->set_mode(TcpProxy::Mode::kPass);
  auto r = c.get("/who");
  REQUIRE(r.is_ok());
  REQUIRE(r->status == 200);
}

TEST_CASE("tcp proxy resets clients when the upstream is down", "[unit][proxy]") {
  uint16_t dead_port = 0;
  {
    RunningServer gone(echo_router());
    dead_port = gone.port();
  }
  auto proxy = proxy_to(dead_port);
  RawSocket s(proxy->port());
  REQUIRE(s.connected());
  (void)s.send(kClose);
  REQUIRE(s.read_all(3s).empty());
  REQUIRE(s.eof());
}
