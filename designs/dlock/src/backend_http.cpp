// dlockd://host:port backend: the dlockd JSON API over sd::net::HttpClient.
//
// Concurrency: HttpClient is one keep-alive connection and not thread-safe, so the backend keeps a
// small pool (a mutex-guarded free list). A call checks a client out, uses it, and returns it; a
// client whose transport failed is dropped (not returned) so its connection is not reused.
// Retries: transport failures, 5xx and 408 (all kUnavailable) are retried with exponential backoff
// and full jitter, up to options.max_attempts, for every call: keepalive/describe/list are reads or
// idempotent; acquire is idempotent on the server (re-acquire by the same lease returns the same
// grant); release treats "not_holder" on a retry as success (the first attempt may have landed);
// grant_lease may leave an orphan lease behind, which simply expires.

#include <algorithm>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "backend_impl.hpp"
#include "sd/base/log.hpp"
#include "sd/net/client.hpp"
#include "sd/net/http.hpp"

namespace sd::dlock {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxIdleClients = 32;

Duration jittered(Duration base) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (base.count() <= 1) return base;
  std::uniform_int_distribution<long long> d(base.count() / 2, base.count());
  return Duration{d(rng)};
}

// Maps a non-2xx dlockd response to a Status.
Status status_from_response(const net::ClientResponse& r) {
  std::string code;
  std::string message;
  auto j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (auto it = j.find("error"); it != j.end() && it->is_string()) code = it->get<std::string>();
    if (auto it = j.find("message"); it != j.end() && it->is_string()) {
      message = it->get<std::string>();
    }
  }
  std::string text = message.empty() ? code : message;
  if (text.empty()) text = "HTTP " + std::to_string(r.status);
  switch (r.status) {
    case 409:
      if (code == "locked" || code == "not_holder") return conflict(code);
      if (code.empty() || message.empty() || message == code) return conflict(text);
      return conflict(code + ": " + message);  // "mode_mismatch: ...", "already_waiting: ..."

    case 404:
      return not_found(text);
    case 400:
    case 413:
    case 422:
      return invalid_argument(text);
    case 429:
      return resource_exhausted(text);
    case 408:
      return unavailable("dlockd: " + text);
    case 501:
      return Status(Code::kUnimplemented, text);
    default:
      break;
  }
  if (r.status >= 500) return unavailable("dlockd: HTTP " + std::to_string(r.status) + ": " + text);
  return internal_error("dlockd: unexpected HTTP " + std::to_string(r.status) + ": " + text);
}

template <class T>
T field(const json& j, const char* name, T def) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return def;
  }
}

Mode mode_field(const json& j, Mode def) {
  auto m = parse_mode(field<std::string>(j, "mode", ""));
  return m ? *m : def;
}

LockInfo lock_info_from_json(Kind kind, const json& j) {
  LockInfo info;
  info.kind = kind;
  info.name = field<std::string>(j, "name", "");
  info.limit = field<uint32_t>(j, "limit", 1);
  info.last_token = field<Token>(j, "last_token", 0);
  info.lock_delay_ms_left = field<long long>(j, "lock_delay_ms_left", 0);
  Mode def = kind == Kind::kSemaphore ? Mode::kShared : Mode::kExclusive;
  if (auto it = j.find("holders"); it != j.end() && it->is_array()) {
    for (const auto& h : *it) {
      HolderInfo hi;
      hi.lease_id = field<std::string>(h, "lease_id", "");
      hi.mode = mode_field(h, def);
      hi.permits = field<uint32_t>(h, "permits", 1);
      hi.token = field<Token>(h, "token", 0);
      hi.ttl_ms_left = field<long long>(h, "ttl_ms_left", 0);
      info.holders.push_back(std::move(hi));
    }
  }
  if (auto it = j.find("waiters"); it != j.end() && it->is_array()) {
    for (const auto& w : *it) {
      WaiterInfo wi;
      wi.lease_id = field<std::string>(w, "lease_id", "");
      wi.mode = mode_field(w, def);
      wi.permits = field<uint32_t>(w, "permits", 1);
      wi.wait_ms_left = field<long long>(w, "wait_ms_left", 0);
      info.waiters.push_back(std::move(wi));
    }
  }
  return info;
}

std::string collection(Kind kind) {
  return kind == Kind::kLock ? "locks" : "semaphores";
}

class HttpBackend final : public Backend {
 public:
  HttpBackend(std::string host, uint16_t port, const BackendOptions& options, std::string uri)
      : host_(std::move(host)), port_(port), options_(options), uri_(std::move(uri)) {
    options_.max_attempts = std::max(1, options_.max_attempts);
  }

  Result<LeaseGrant> grant_lease(Duration ttl) override {
    auto r = call(net::Method::kPost, "/v1/leases", json{{"ttl_ms", ttl.count()}});
    if (!r) return r.status();
    LeaseGrant g;
    g.id = field<std::string>(*r, "lease_id", "");
    g.ttl = Duration{field<long long>(*r, "ttl_ms", ttl.count())};
    if (g.id.empty()) return internal_error("dlockd: lease grant without lease_id");
    return g;
  }

  Status keepalive(const LeaseId& id) override {
    return call(net::Method::kPost, "/v1/leases/" + net::percent_encode(id) + "/keepalive",
                json::object())
        .status();
  }

  Status revoke(const LeaseId& id) override {
    return call(net::Method::kDelete, "/v1/leases/" + net::percent_encode(id), std::nullopt)
        .status();
  }

  Result<Grant> acquire(const AcquireRequest& req) override {
    return acquire_chunked(req, options_.max_wait_per_call,
                           [this](const AcquireRequest& r) { return acquire_once(r); });
  }

  Status release(Kind kind, const std::string& name, const LeaseId& lease, Token token) override {
    json body{{"lease_id", lease}, {"token", token}};
    return call(net::Method::kPost,
                "/v1/" + collection(kind) + "/" + net::percent_encode(name) + "/release", body,
                Duration{0}, /*not_holder_ok_on_retry=*/true)
        .status();
  }

  Result<LockInfo> describe(Kind kind, const std::string& name) override {
    auto r = call(net::Method::kGet, "/v1/" + collection(kind) + "/" + net::percent_encode(name),
                  std::nullopt);
    if (!r) return r.status();
    return lock_info_from_json(kind, *r);
  }

  Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) override {
    std::string target = "/v1/" + collection(kind);
    if (!prefix.empty()) target += "?prefix=" + net::percent_encode(prefix);
    auto r = call(net::Method::kGet, target, std::nullopt);
    if (!r) return r.status();
    std::vector<LockInfo> out;
    for (const char* key : {"locks", "semaphores", "items"}) {
      auto it = r->find(key);
      if (it == r->end() || !it->is_array()) continue;
      for (const auto& item : *it) out.push_back(lock_info_from_json(kind, item));
      break;
    }
    return out;
  }

  std::string uri() const override { return uri_; }

 private:
  Result<Grant> acquire_once(const AcquireRequest& req) {
    json body{{"lease_id", req.lease_id}, {"wait_ms", req.wait.count()}};
    if (req.kind == Kind::kLock) {
      body["mode"] = std::string(mode_name(req.mode));
    } else {
      body["limit"] = req.limit;
      body["permits"] = req.permits;
    }
    auto r = call(net::Method::kPost,
                  "/v1/" + collection(req.kind) + "/" + net::percent_encode(req.name) + "/acquire",
                  body, req.wait);
    if (!r) return r.status();
    Grant g;
    g.kind = req.kind;
    g.name = field<std::string>(*r, "name", req.name);
    g.lease_id = field<std::string>(*r, "lease_id", req.lease_id);
    g.mode = req.kind == Kind::kLock ? mode_field(*r, req.mode) : Mode::kShared;
    g.permits = field<uint32_t>(*r, "permits", req.permits);
    g.token = field<Token>(*r, "token", 0);
    if (g.token == 0) return internal_error("dlockd: grant without a token");
    return g;
  }

  // One logical call with retries. `wait` is server-side waiting included in the call: the HTTP
  // timeout becomes wait + request_timeout, and a retry only waits for what is left of it.
  Result<json> call(net::Method method, const std::string& target, std::optional<json> body,
                    Duration wait = Duration{0}, bool not_holder_ok_on_retry = false) {
    const auto wait_deadline = Clock::now() + wait;
    Duration backoff = options_.initial_backoff;
    Status last;
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(jittered(backoff));
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
      std::optional<json> b = body;
      Duration left{0};
      if (wait.count() > 0) {
        left = std::max(Duration{0},
                        std::chrono::duration_cast<Duration>(wait_deadline - Clock::now()));
        if (b) (*b)["wait_ms"] = left.count();
      }
      auto r = once(method, target, b, left + options_.request_timeout);
      if (r.is_ok()) return r;
      last = r.status();
      if (attempt > 0 && not_holder_ok_on_retry && last.code() == Code::kConflict &&
          last.message() == "not_holder") {
        return json::object();
      }
      // A retried acquire can find the server still parking the first attempt's waiter (the
      // connection died, the server has not noticed yet): that is transient too.
      const bool parked_twice = attempt > 0 && last.code() == Code::kConflict &&
                                last.message().starts_with("already_waiting");
      if (last.code() != Code::kUnavailable && !parked_twice) return last;
      SD_LOG(kDebug) << "dlockd " << net::method_name(method) << " " << target << " attempt "
                     << attempt + 1 << " failed: " << last.to_string();
    }
    return last;
  }

  Result<json> once(net::Method method, const std::string& target, const std::optional<json>& body,
                    Duration timeout) {
    auto client = checkout();
    Result<net::ClientResponse> r = [&]() -> Result<net::ClientResponse> {
      if (body) {
        net::Headers h{{"Content-Type", "application/json"}};
        return client->request(method, target, body->dump(), h, timeout);
      }
      return client->request(method, target, {}, {}, timeout);
    }();
    if (!r) {
      // Transport failure or client-side timeout: drop this connection, report retryable.
      return unavailable("dlockd " + host_ + ":" + std::to_string(port_) + ": " +
                         r.status().to_string());
    }
    checkin(std::move(client));
    if (r->status < 200 || r->status >= 300) return status_from_response(*r);
    if (r->body.empty()) return json::object();
    auto j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return internal_error("dlockd: response is not JSON");
    return j;
  }

  std::unique_ptr<net::HttpClient> checkout() {
    {
      std::lock_guard lk(pool_mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    net::ClientOptions co;
    co.connect_timeout = std::min<std::chrono::milliseconds>(options_.request_timeout,
                                                             std::chrono::milliseconds(2'000));
    co.request_timeout = options_.request_timeout;
    return std::make_unique<net::HttpClient>(host_, port_, co);
  }

  void checkin(std::unique_ptr<net::HttpClient> c) {
    std::lock_guard lk(pool_mu_);
    if (idle_.size() < kMaxIdleClients) idle_.push_back(std::move(c));
  }

  std::string host_;
  uint16_t port_;
  BackendOptions options_;
  std::string uri_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<net::HttpClient>> idle_;  // guarded by pool_mu_
};

}  // namespace

Result<std::shared_ptr<Backend>> open_http_backend(const BackendUri& uri,
                                                   const BackendOptions& options) {
  const auto& [host, port] = uri.hosts.front();
  std::string canonical = "dlockd://" +
                          (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                          std::to_string(port);
  return std::shared_ptr<Backend>(std::make_shared<HttpBackend>(host, port, options, canonical));
}

}  // namespace sd::dlock
