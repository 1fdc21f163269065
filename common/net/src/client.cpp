// Blocking HTTP/1.1 client: a private io_context driven with run_for() so every operation has a
// deadline, one keep-alive connection, one transparent retry on a stale reused connection.
#include "sd/net/client.hpp"

#include <array>
#include <cctype>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

namespace sd::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}
}  // namespace

const std::string* ClientResponse::header(std::string_view name) const {
  return find_header(headers, name);
}

Result<nlohmann::json> ClientResponse::json() const {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("response body is not valid JSON");
  return j;
}

struct HttpClient::Impl {
  Impl(std::string h, uint16_t p, ClientOptions o)
      : host(std::move(h)), port(p), opts(o), socket(ioc), resolver(ioc) {}

  // Drives the private io_context until `done` or the deadline. On timeout everything pending is
  // cancelled and the connection dropped (its state is unknown). Returns false on timeout.
  bool drive(const bool& done, Clock::time_point deadline) {
    ioc.restart();
    while (!done) {
      auto now = Clock::now();
      if (now >= deadline) break;
      ioc.run_one_for(deadline - now);
    }
    if (done) return true;
    error_code ignored;
    resolver.cancel();
    socket.close(ignored);
    ioc.restart();
    while (!done) ioc.run_one();  // let the cancelled operation complete before locals die
    return false;
  }

  Status connect(Clock::time_point deadline) {
    error_code ec;
    socket.close(ec);
    buffer.clear();
    std::string where = host + ":" + std::to_string(port);
    if (endpoints.empty()) {
      asio::ip::address addr = asio::ip::make_address(host, ec);
      if (!ec) {
        endpoints.emplace_back(addr, port);
      } else {
        bool done = false;
        error_code rec;
        resolver.async_resolve(host, std::to_string(port),
                               [&](const error_code& e, const tcp::resolver::results_type& r) {
                                 rec = e;
                                 for (const auto& entry : r) endpoints.push_back(entry.endpoint());
                                 done = true;
                               });
        if (!drive(done, deadline)) return deadline_exceeded("resolving " + host + " timed out");
        if (rec || endpoints.empty()) {
          endpoints.clear();
          return unavailable("cannot resolve " + host + ": " + rec.message());
        }
      }
    }
    bool done = false;
    error_code cec;
    asio::async_connect(socket, endpoints, [&](const error_code& e, const tcp::endpoint&) {
      cec = e;
      done = true;
    });
    if (!drive(done, deadline)) return deadline_exceeded("connect to " + where + " timed out");
    if (cec) {
      socket.close(ec);
      return unavailable("connect to " + where + ": " + cec.message());
    }
    socket.set_option(tcp::no_delay(true), ec);
    return Status::ok();
  }

  void build_head(Method method, std::string_view target, std::string_view body,
                  const Headers& headers) {
    head.clear();
    head += method_name(method);
    head += ' ';
    head += target.empty() ? std::string_view("/") : target;
    head += " HTTP/1.1\r\nHost: ";
    head += host;
    head += ':';
    head += std::to_string(port);
    head += "\r\n";
    bool has_type = false;
    for (const auto& [k, v] : headers) {
      if (k.find_first_of("\r\n") != std::string::npos ||
          v.find_first_of("\r\n") != std::string::npos) {
        continue;
      }
      if (iequals(k, "content-length") || iequals(k, "host")) continue;
      if (iequals(k, "content-type")) has_type = true;
      head += k;
      head += ": ";
      head += v;
      head += "\r\n";
    }
    if (!body.empty() && !has_type) head += "Content-Type: application/json\r\n";
    if (!body.empty() || method == Method::kPost || method == Method::kPut ||
        method == Method::kPatch) {
      head += "Content-Length: ";
      head += std::to_string(body.size());
      head += "\r\n";
    }
    head += "\r\n";
  }

  Result<ClientResponse> request(Method method, std::string_view target, std::string_view body,
                                 const Headers& headers, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + (timeout.count() > 0 ? timeout : opts.request_timeout);
    const std::string where = host + ":" + std::to_string(port);
    build_head(method, target, body, headers);
    for (int attempt = 0;; ++attempt) {
      const bool reused = socket.is_open();
      if (!reused) {
        SD_RETURN_IF_ERROR(connect(std::min(deadline, Clock::now() + opts.connect_timeout)));
      }
      // A reused keep-alive connection may have been closed by the server meanwhile; that shows
      // as a write error or as EOF before any response byte, and then one retry is safe.
      const bool may_retry = reused && attempt == 0;

      bool done = false;
      error_code ec;
      if (Status st = write_request(body, deadline, where); !st.is_ok()) {
        if (may_retry && st.code() == Code::kUnavailable) continue;
        return st;
      }

      http::response_parser<http::string_body> parser;
      parser.body_limit(opts.body_limit);
      if (method == Method::kHead) parser.skip(true);
      done = false;
      http::async_read(socket, buffer, parser, [&](const error_code& e, size_t) {
        ec = e;
        done = true;
      });
      if (!drive(done, deadline)) return deadline_exceeded("request to " + where + " timed out");
      if (ec) {
        bool nothing = !parser.got_some();
        close();
        if (may_retry && nothing) continue;
        return unavailable("receive from " + where + ": " + ec.message());
      }
      auto& msg = parser.get();
      ClientResponse out;
      out.status = static_cast<int>(msg.result_int());
      copy_headers(msg, out);
      out.body = std::move(msg.body());
      if (!msg.keep_alive()) close();
      return out;
    }
  }

  // Like request(), but the 2xx body goes to on_data as it arrives (buffer_body + read_some, so a
  // chunk is delivered as soon as it is parsed instead of when a buffer fills).
  Result<ClientResponse> stream(Method method, std::string_view target, std::string_view body,
                                const Headers& headers, const HttpClient::DataCallback& on_data,
                                std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + (timeout.count() > 0 ? timeout : opts.request_timeout);
    const std::string where = host + ":" + std::to_string(port);
    build_head(method, target, body, headers);
    for (int attempt = 0;; ++attempt) {
      const bool reused = socket.is_open();
      if (!reused) {
        SD_RETURN_IF_ERROR(connect(std::min(deadline, Clock::now() + opts.connect_timeout)));
      }
      const bool may_retry = reused && attempt == 0;  // see request()

      bool done = false;
      error_code ec;
      if (Status st = write_request(body, deadline, where); !st.is_ok()) {
        if (may_retry && st.code() == Code::kUnavailable) continue;
        return st;
      }

      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);  // a stream is unbounded; on_data decides when to stop
      if (method == Method::kHead) parser.skip(true);
      done = false;
      http::async_read_header(socket, buffer, parser, [&](const error_code& e, size_t) {
        ec = e;
        done = true;
      });
      if (!drive(done, deadline)) return deadline_exceeded("request to " + where + " timed out");
      if (ec) {
        bool nothing = !parser.got_some();
        close();
        if (may_retry && nothing) continue;
        return unavailable("receive from " + where + ": " + ec.message());
      }
      ClientResponse out;
      out.status = static_cast<int>(parser.get().result_int());
      copy_headers(parser.get(), out);
      const bool streamed = out.status >= 200 && out.status < 300;
      std::array<char, 16 * 1024> chunk;
      while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        done = false;
        http::async_read_some(socket, buffer, parser, [&](const error_code& e, size_t) {
          ec = e;
          done = true;
        });
        if (!drive(done, deadline)) return deadline_exceeded("stream from " + where + " timed out");
        if (ec == http::error::need_buffer) ec = {};  // our chunk buffer is full: not an error
        if (ec) {
          close();
          return unavailable("receive from " + where + ": " + ec.message());
        }
        const size_t n = chunk.size() - parser.get().body().size;
        if (n == 0) continue;
        if (streamed) {
          if (!on_data(std::string_view(chunk.data(), n))) {
            close();  // the rest of the response is unread: the connection is unusable
            return out;
          }
        } else {
          if (out.body.size() + n > opts.body_limit) {
            close();
            return unavailable("response from " + where + " exceeds the body limit");
          }
          out.body.append(chunk.data(), n);
        }
      }
      if (!parser.get().keep_alive()) close();
      return out;
    }
  }

  // Writes the built head + body; kUnavailable (connection closed) or kDeadlineExceeded.
  Status write_request(std::string_view body, Clock::time_point deadline,
                       const std::string& where) {
    bool done = false;
    error_code ec;
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    asio::async_write(socket, bufs, [&](const error_code& e, size_t) {
      ec = e;
      done = true;
    });
    if (!drive(done, deadline)) return deadline_exceeded("request to " + where + " timed out");
    if (ec) {
      close();
      return unavailable("send to " + where + ": " + ec.message());
    }
    return Status::ok();
  }

  template <class Fields>
  static void copy_headers(const Fields& fields, ClientResponse& out) {
    for (const auto& f : fields) {
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
  }

  void close() {
    error_code ec;
    socket.close(ec);
    buffer.clear();
  }

  std::string host;
  uint16_t port;
  ClientOptions opts;
  asio::io_context ioc{1};
  tcp::socket socket;
  tcp::resolver resolver;
  std::vector<tcp::endpoint> endpoints;  // resolved once, reused on reconnect
  boost::beast::flat_buffer buffer;
  std::string head;
};

HttpClient::HttpClient(std::string host, uint16_t port, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(host), port, options)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<ClientResponse> HttpClient::request(Method method, std::string_view target,
                                           std::string_view body, const Headers& headers,
                                           std::chrono::milliseconds timeout) {
  return impl_->request(method, target, body, headers, timeout);
}

Result<ClientResponse> HttpClient::get(std::string_view target) {
  return request(Method::kGet, target);
}

Result<ClientResponse> HttpClient::post_json(std::string_view target, const nlohmann::json& body,
                                             std::chrono::milliseconds timeout) {
  static const Headers kJson{{"Content-Type", "application/json"}};
  return request(Method::kPost, target,
                 body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson,
                 timeout);
}

Result<ClientResponse> HttpClient::del(std::string_view target) {
  return request(Method::kDelete, target);
}

Result<ClientResponse> HttpClient::stream(Method method, std::string_view target,
                                          std::string_view body, const DataCallback& on_data,
                                          std::chrono::milliseconds timeout,
                                          const Headers& headers) {
  return impl_->stream(method, target, body, headers, on_data, timeout);
}

void HttpClient::close() {
  impl_->close();
}

}  // namespace sd::net
