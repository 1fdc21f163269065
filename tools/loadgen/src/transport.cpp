// HTTP/1.1 keep-alive (Beast serializer/parser) and RESP transports over one TCP socket each.
#include <array>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "engine_impl.hpp"

namespace sd::loadgen::detail {

namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

Status io_error(std::string_view what, const error_code& ec) {
  return unavailable(std::string(what) + ": " + ec.message());
}

class TcpBase : public Transport {
 public:
  TcpBase(asio::io_context& ioc, tcp::endpoint ep) : socket_(ioc), ep_(std::move(ep)) {}

  asio::awaitable<Status> connect() override {
    close();
    auto [ec] = co_await socket_.async_connect(ep_, kTok);
    if (ec) {
      close();
      co_return io_error("connect " + ep_.address().to_string() + ":" + std::to_string(ep_.port()),
                         ec);
    }
    // Requests are small and latency-bound: never let Nagle hold one back.
    socket_.set_option(tcp::no_delay(true), ec);
    on_connected();
    co_return Status::ok();
  }
  void close() override {
    error_code ignored;
    socket_.close(ignored);
  }
  bool is_open() const override { return socket_.is_open(); }

 protected:
  virtual void on_connected() = 0;
  tcp::socket socket_;
  tcp::endpoint ep_;
};

http::verb to_verb(net::Method m) {
  switch (m) {
    case net::Method::kGet:
      return http::verb::get;
    case net::Method::kHead:
      return http::verb::head;
    case net::Method::kPost:
      return http::verb::post;
    case net::Method::kPut:
      return http::verb::put;
    case net::Method::kDelete:
      return http::verb::delete_;
    case net::Method::kPatch:
      return http::verb::patch;
    case net::Method::kOptions:
      return http::verb::options;
    case net::Method::kOther:
      break;
  }
  return http::verb::get;
}

class HttpTransport final : public TcpBase {
 public:
  HttpTransport(asio::io_context& ioc, tcp::endpoint ep, std::string host)
      : TcpBase(ioc, std::move(ep)), host_(std::move(host)) {}

  asio::awaitable<Status> send(const Call& call) override {
    req_ = {};
    req_.version(11);
    req_.method(to_verb(call.method));
    req_.target(call.target);
    req_.set(http::field::host, host_);
    req_.set(http::field::user_agent, "sd-load");
    if (!call.body.empty()) req_.set(http::field::content_type, "application/json");
    req_.body() = call.body;
    req_.keep_alive(true);
    req_.prepare_payload();
    head_ = call.method == net::Method::kHead;
    auto [ec, n] = co_await http::async_write(socket_, req_, kTok);
    if (ec) {
      close();
      co_return io_error("write", ec);
    }
    co_return Status::ok();
  }

  asio::awaitable<Result<Reply>> receive() override {
    parser_.emplace();
    parser_->body_limit(64 << 20);
    if (head_) parser_->skip(true);  // a HEAD response has Content-Length but no body
    auto [ec, n] = co_await http::async_read(socket_, buffer_, *parser_, kTok);
    if (ec) {
      close();
      co_return io_error("read", ec);
    }
    Reply r;
    r.status = static_cast<int>(parser_->get().result_int());
    r.body = std::move(parser_->get().body());
    // The server will close (Connection: close, HTTP/1.0): reconnect before the next request
    // rather than failing it.
    if (!parser_->keep_alive()) close();
    co_return r;
  }

 private:
  void on_connected() override { buffer_.clear(); }

  std::string host_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool head_ = false;
};

class RespTransport final : public TcpBase {
 public:
  using TcpBase::TcpBase;

  asio::awaitable<Status> send(const Call& call) override {
    out_.clear();
    resp_encode(call.args, out_);
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), kTok);
    if (ec) {
      close();
      co_return io_error("write", ec);
    }
    co_return Status::ok();
  }

  asio::awaitable<Result<Reply>> receive() override {
    for (;;) {
      auto next = reader_.next();
      if (!next.is_ok()) {
        close();
        co_return next.status();
      }
      if (next->has_value()) {
        Reply r;
        r.resp = std::move(**next);
        co_return r;
      }
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(in_), kTok);
      if (ec) {
        close();
        co_return io_error("read", ec);
      }
      reader_.feed(std::string_view(in_.data(), n));
    }
  }

 private:
  void on_connected() override { reader_.clear(); }

  std::string out_;
  RespReader reader_;
  std::array<char, 16 << 10> in_{};
};

}  // namespace

std::unique_ptr<Transport> make_transport(Protocol p, asio::io_context& ioc,
                                          const tcp::endpoint& ep, std::string host_header) {
  if (p == Protocol::kResp) return std::make_unique<RespTransport>(ioc, ep);
  return std::make_unique<HttpTransport>(ioc, ep, std::move(host_header));
}

}  // namespace sd::loadgen::detail
