#pragma once
// HTTP request/response values shared by the server, router and client. No Asio/Beast here.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sd::net {

class EventStream;  // sse.hpp

enum class Method { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };

std::string_view method_name(Method m);
Method parse_method(std::string_view s);

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup of the first header called name; nullptr if absent.
const std::string* find_header(const Headers& headers, std::string_view name);

struct Request {
  Method method = Method::kGet;
  std::string target;                         // raw request target: "/v1/locks/a%2Fb?x=1"
  std::string path;                           // percent-decoded path without query: "/v1/locks/a/b"
  std::map<std::string, std::string> query;   // percent-decoded query parameters
  std::map<std::string, std::string> params;  // path parameters filled by the Router
  Headers headers;
  std::string body;
  std::string remote;  // "127.0.0.1:54321"

  // Case-insensitive header lookup; nullptr if absent.
  const std::string* header(std::string_view name) const;
  const std::string& param(const std::string& name) const;  // "" if absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;  // extra headers
  std::string body;
  std::shared_ptr<EventStream> stream;  // set: a streaming SSE response (see sse.hpp)

  static Response json(int status, const nlohmann::json& body);
  // The project-wide error shape: {"error": code, "message": message}.
  static Response error(int status, std::string_view code, std::string_view message);
  static Response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
};

// Percent-decodes s; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);
std::string percent_encode(std::string_view s);  // encodes everything but unreserved chars

}  // namespace sd::net
