#pragma once
// Blocking HTTP/1.1 client with one keep-alive connection (reconnects when it drops) and timeouts.
// For tests and service-to-service calls. Not thread-safe: one per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "sd/base/status.hpp"
#include "sd/net/http.hpp"

namespace sd::net {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{10'000};  // whole request+response, unless overridden
  size_t body_limit = 64 << 20;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  const std::string* header(std::string_view name) const;  // case-insensitive
  Result<nlohmann::json> json() const;                     // parse body
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, ClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends one request. Transport failures and timeouts -> kUnavailable / kDeadlineExceeded; any
  // HTTP status (including 4xx/5xx) is a successful ClientResponse.
  Result<ClientResponse> request(Method method, std::string_view target, std::string_view body = {},
                                 const Headers& headers = {},
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
  Result<ClientResponse> get(std::string_view target);
  Result<ClientResponse> post_json(std::string_view target, const nlohmann::json& body,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds{
                                       0});
  Result<ClientResponse> del(std::string_view target);

  // For streaming endpoints (e.g. etcd's /v3/watch, a chunked response that never ends by
  // itself): sends one request and hands the 2xx response body to on_data piece by piece as it
  // arrives (chunked framing removed). on_data returning false stops reading: the connection is
  // then closed and the call returns the response head. A non-2xx body is not streamed but
  // collected into ClientResponse::body. The timeout covers the whole call, streaming included:
  // when it passes, the result is kDeadlineExceeded even if data was already delivered.
  using DataCallback = std::function<bool(std::string_view data)>;
  Result<ClientResponse> stream(Method method, std::string_view target, std::string_view body,
                                const DataCallback& on_data,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds{0},
                                const Headers& headers = {});
  void close();  // drops the connection; the next request reconnects

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::net
