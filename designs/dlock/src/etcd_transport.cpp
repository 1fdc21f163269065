// etcd gateway transport: failover over endpoints, pooled HttpClients, the watch stream.

#include "etcd_transport.hpp"

#include <algorithm>
#include <optional>
#include <random>
#include <thread>

#include "etcd_codec.hpp"
#include "sd/base/log.hpp"
#include "sd/net/client.hpp"

namespace sd::dlock::etcd {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxIdlePerEndpoint = 16;
// A dead member on loopback refuses at once; a hung one must not eat the whole budget.
constexpr std::chrono::milliseconds kMaxConnectTimeout{1'000};

Duration jittered(Duration base) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (base.count() <= 1) return base;
  std::uniform_int_distribution<long long> d(base.count() / 2, base.count());
  return Duration{d(rng)};
}

std::chrono::milliseconds left_until(SteadyClock::time_point deadline) {
  return std::max(
      std::chrono::milliseconds{0},
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()));
}

}  // namespace

Transport::Transport(std::vector<std::pair<std::string, uint16_t>> endpoints,
                     const BackendOptions& options)
    : endpoints_(std::move(endpoints)), options_(options), idle_(endpoints_.size()) {
  options_.max_attempts = std::max(1, options_.max_attempts);
  if (options_.request_timeout.count() <= 0) options_.request_timeout = Duration{5'000};
}

Transport::~Transport() = default;

std::string Transport::where(size_t i) const {
  const auto& [host, port] = endpoints_[i];
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

std::string Transport::endpoints_text() const {
  std::string out;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (i) out += ',';
    out += where(i);
  }
  return out;
}

size_t Transport::preferred() {
  std::lock_guard lk(mu_);
  return preferred_;
}

void Transport::answered(size_t i) {
  std::lock_guard lk(mu_);
  preferred_ = i;
}

void Transport::failed(size_t i) {
  std::lock_guard lk(mu_);
  if (preferred_ == i) preferred_ = (i + 1) % endpoints_.size();
}

std::unique_ptr<net::HttpClient> Transport::checkout(size_t i) {
  {
    std::lock_guard lk(mu_);
    if (!idle_[i].empty()) {
      auto c = std::move(idle_[i].back());
      idle_[i].pop_back();
      return c;
    }
  }
  net::ClientOptions co;
  co.connect_timeout =
      std::min<std::chrono::milliseconds>(options_.request_timeout, kMaxConnectTimeout);
  co.request_timeout = options_.request_timeout;
  return std::make_unique<net::HttpClient>(endpoints_[i].first, endpoints_[i].second, co);
}

void Transport::checkin(size_t i, std::unique_ptr<net::HttpClient> c) {
  std::lock_guard lk(mu_);
  if (idle_[i].size() < kMaxIdlePerEndpoint) idle_[i].push_back(std::move(c));
}

Result<json> Transport::call_once(size_t i, const std::string& path, const std::string& body,
                                  std::chrono::milliseconds timeout) {
  auto client = checkout(i);
  static const net::Headers kJson{{"Content-Type", "application/json"}};
  auto r = client->request(net::Method::kPost, path, body, kJson, timeout);
  if (!r) {
    // The connection's state is unknown: drop it rather than pool it.
    return unavailable("etcd " + where(i) + ": " + r.status().to_string());
  }
  checkin(i, std::move(client));
  if (r->status != 200) return status_from_gateway(r->status, r->body);
  auto j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return internal_error("etcd " + where(i) + ": response is not a JSON object");
  return j;
}

Result<json> Transport::call(const std::string& path, const json& body, bool* resent) {
  if (resent) *resent = false;
  const std::string text = body.dump();
  const auto deadline = SteadyClock::now() + 2 * options_.request_timeout;
  const size_t n = endpoints_.size();
  Duration backoff = options_.initial_backoff;
  Status last;
  bool sent_before = false;
  for (int round = 0; round < options_.max_attempts; ++round) {
    if (round > 0) {
      auto pause = std::min<Duration>(jittered(backoff), left_until(deadline));
      std::this_thread::sleep_for(pause);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    const size_t start = preferred();
    for (size_t k = 0; k < n; ++k) {
      const auto left = left_until(deadline);
      if (left.count() == 0) break;
      const size_t i = (start + k) % n;
      if (resent && sent_before) *resent = true;
      auto r = call_once(i, path, text, std::min(left, options_.request_timeout));
      sent_before = true;
      if (r.is_ok() || r.status().code() != Code::kUnavailable) {
        answered(i);
        return r;
      }
      last = r.status();
      failed(i);
      SD_LOG(kDebug) << "etcd " << path << " via " << where(i) << " failed: " << last.to_string();
    }
    if (left_until(deadline).count() == 0) break;
  }
  return unavailable("etcd cluster unreachable (endpoints " + endpoints_text() +
                     "): " + last.message());
}

Result<WatchOutcome> Transport::watch_deletes(const std::string& key, const std::string& range_end,
                                              int64_t start_revision,
                                              SteadyClock::time_point deadline) {
  json create{{"key", base64_encode(key)},
              {"start_revision", std::to_string(start_revision)},
              {"filters", json::array({"NOPUT"})}};
  if (!range_end.empty()) create["range_end"] = base64_encode(range_end);
  const std::string body = json{{"create_request", create}}.dump();

  const size_t i = preferred();
  auto client = checkout(i);
  JsonStreamSplitter splitter;
  bool created = false;
  std::optional<WatchOutcome> outcome;
  auto on_data = [&](std::string_view data) {
    for (const auto& text : splitter.feed(data)) {
      auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
      auto it = j.is_object() ? j.find("result") : j.end();
      if (it == j.end() || !it->is_object()) {  // {"error": ...}: the stream failed
        outcome = WatchOutcome::kBroken;
        return false;
      }
      if (it->value("canceled", false)) {  // e.g. start_revision compacted: re-read instead
        outcome = WatchOutcome::kBroken;
        return false;
      }
      if (it->value("created", false)) created = true;
      if (auto ev = it->find("events"); ev != it->end() && ev->is_array() && !ev->empty()) {
        outcome = WatchOutcome::kEvent;
        return false;
      }
    }
    return true;
  };
  static const net::Headers kJson{{"Content-Type", "application/json"}};
  auto r = client->stream(net::Method::kPost, "/v3/watch", body, on_data,
                          std::max(std::chrono::milliseconds{1}, left_until(deadline)), kJson);
  if (outcome) {
    checkin(i, std::move(client));  // it closed its connection; the next use reconnects
    return *outcome;
  }
  if (!r) {
    if (SteadyClock::now() >= deadline &&
        (created || r.status().code() == Code::kDeadlineExceeded)) {
      return WatchOutcome::kTimeout;
    }
    failed(i);
    SD_LOG(kDebug) << "etcd watch via " << where(i) << " failed: " << r.status().to_string();
    return WatchOutcome::kBroken;
  }
  checkin(i, std::move(client));
  if (r->status != 200) {
    Status s = status_from_gateway(r->status, r->body);
    if (s.code() != Code::kUnavailable) return s;
    failed(i);
  }
  return WatchOutcome::kBroken;
}

}  // namespace sd::dlock::etcd
