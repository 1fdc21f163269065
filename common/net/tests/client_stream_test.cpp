// HttpClient::stream against a scripted raw-socket server: chunks arrive incrementally, the
// callback can stop the stream, non-2xx bodies are collected, and the timeout covers the stream.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "sd/net/client.hpp"

using namespace std::chrono_literals;
using sd::net::HttpClient;
using sd::net::Method;

namespace {

// Accepts connections on 127.0.0.1 and runs `script(fd)` for each, one at a time, after reading
// the request head (and a small body, if any arrives with it).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int fd)> script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

  static void send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  static std::string chunk(const std::string& data) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx\r\n", data.size());
    return hex + data + "\r\n";
  }

 private:
  void run() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      script_(c);
      ::close(c);
    }
  }

  std::function<void(int)> script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A one-shot gate between the test and the server script.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;  // guarded by mu
  void release() {
    {
      std::lock_guard lk(mu);
      open = true;
    }
    cv.notify_all();
  }
  bool wait(std::chrono::milliseconds t) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, t, [&] { return open; });
  }
};

constexpr const char* kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

}  // namespace

TEST_CASE("stream delivers each chunk before the response ends", "[unit]") {
  Gate first_seen;
  ScriptedServer server([&](int fd) {
    ScriptedServer::send_all(fd, kChunkedHead);
    ScriptedServer::send_all(fd, ScriptedServer::chunk("{\"a\":1}\n"));
    // The second chunk is only sent once the client has seen the first: proves incremental reads.
    first_seen.wait(5s);
    ScriptedServer::send_all(fd, ScriptedServer::chunk("{\"b\":2}\n") + "0\r\n\r\n");
  });
  HttpClient client("127.0.0.1", server.port());
  std::string got;
  auto r = client.stream(
      Method::kPost, "/watch", "{}",
      [&](std::string_view d) {
        got += d;
        if (got == "{\"a\":1}\n") first_seen.release();
        return true;
      },
      5s);
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->body.empty());
  CHECK(got == "{\"a\":1}\n{\"b\":2}\n");
}

TEST_CASE("stream stops when the callback returns false", "[unit]") {
  Gate done;
  ScriptedServer server([&](int fd) {
    ScriptedServer::send_all(fd, kChunkedHead);
    ScriptedServer::send_all(fd, ScriptedServer::chunk("first"));
    done.wait(5s);  // never ends the response by itself
  });
  HttpClient client("127.0.0.1", server.port());
  int calls = 0;
  auto started = std::chrono::steady_clock::now();
  auto r = client.stream(
      Method::kGet, "/s", {},
      [&](std::string_view) {
        ++calls;
        return false;
      },
      5s);
  done.release();
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(calls == 1);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("stream collects a non-2xx body instead of streaming it", "[unit]") {
  ScriptedServer server([&](int fd) {
    ScriptedServer::send_all(fd, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                     ScriptedServer::chunk("{\"error\":\"x\"}") + "0\r\n\r\n");
  });
  HttpClient client("127.0.0.1", server.port());
  int calls = 0;
  auto r = client.stream(
      Method::kPost, "/s", "{}",
      [&](std::string_view) {
        ++calls;
        return true;
      },
      5s);
  REQUIRE(r.is_ok());
  CHECK(r->status == 404);
  CHECK(r->body == "{\"error\":\"x\"}");
  CHECK(calls == 0);
}

TEST_CASE("stream times out while the server keeps the response open", "[unit]") {
  Gate done;
  ScriptedServer server([&](int fd) {
    ScriptedServer::send_all(fd, kChunkedHead);
    ScriptedServer::send_all(fd, ScriptedServer::chunk("partial"));
    done.wait(5s);
  });
  HttpClient client("127.0.0.1", server.port());
  std::string got;
  auto r = client.stream(
      Method::kGet, "/s", {},
      [&](std::string_view d) {
        got += d;
        return true;
      },
      300ms);
  done.release();
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == sd::Code::kDeadlineExceeded);
  CHECK(got == "partial");
}

TEST_CASE("stream then a plain request reuse the client", "[unit]") {
  // After a stream that ended normally the keep-alive connection serves the next request.
  ScriptedServer server([&](int fd) {
    ScriptedServer::send_all(fd, kChunkedHead);
    ScriptedServer::send_all(fd, ScriptedServer::chunk("x") + "0\r\n\r\n");
  });
  HttpClient client("127.0.0.1", server.port());
  std::string got;
  auto r1 = client.stream(
      Method::kGet, "/s", {},
      [&](std::string_view d) {
        got += d;
        return true;
      },
      5s);
  REQUIRE(r1.is_ok());
  CHECK(got == "x");
  // The scripted server closes each connection after its script: the client must reconnect.
  auto r2 = client.stream(
      Method::kGet, "/s", {},
      [&](std::string_view d) {
        got += d;
        return true;
      },
      5s);
  REQUIRE(r2.is_ok());
  CHECK(got == "xx");
}
