#include "headers.hpp"

#include <algorithm>

namespace sd::ratelimit::headers {

std::string sf_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c > 0x7e) {
      out += '_';
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

uint64_t ceil_seconds(Nanos d) {
  if (d.count() <= 0) return 0;
  constexpr int64_t kNs = 1'000'000'000;
  return static_cast<uint64_t>(d.count() / kNs + (d.count() % kNs != 0 ? 1 : 0));
}

uint64_t ceil_millis(Nanos d) {
  if (d.count() <= 0) return 0;
  constexpr int64_t kNs = 1'000'000;
  return static_cast<uint64_t>(d.count() / kNs + (d.count() % kNs != 0 ? 1 : 0));
}

std::string policy_member(const Quota& q) {
  return sf_string(q.name) + ";q=" + std::to_string(q.quota) +
         ";w=" + std::to_string(ceil_seconds(q.window));
}

std::string ratelimit_member(const Quota& q) {
  return sf_string(q.name) + ";r=" + std::to_string(q.remaining) +
         ";t=" + std::to_string(ceil_seconds(q.reset_after));
}

void append(const std::vector<Quota>& quotas, bool legacy, net::Headers& out) {
  if (quotas.empty()) return;
  std::vector<std::string> policies;
  std::string limits;
  for (const Quota& q : quotas) {
    std::string p = policy_member(q);
    if (std::find(policies.begin(), policies.end(), p) == policies.end()) {
      policies.push_back(std::move(p));
    }
    if (!limits.empty()) limits += ", ";
    limits += ratelimit_member(q);
  }
  std::string policy;
  for (const std::string& p : policies) {
    if (!policy.empty()) policy += ", ";
    policy += p;
  }
  out.emplace_back("RateLimit-Policy", std::move(policy));
  out.emplace_back("RateLimit", std::move(limits));
  if (!legacy) return;
  const Quota* most = &quotas.front();
  for (const Quota& q : quotas) {
    if (q.remaining < most->remaining ||
        (q.remaining == most->remaining && q.reset_after > most->reset_after)) {
      most = &q;
    }
  }
  out.emplace_back("X-RateLimit-Limit", std::to_string(most->quota));
  out.emplace_back("X-RateLimit-Remaining", std::to_string(most->remaining));
  out.emplace_back("X-RateLimit-Reset", std::to_string(ceil_seconds(most->reset_after)));
}

std::string retry_after(Nanos d) {
  return std::to_string(std::max<uint64_t>(1, ceil_seconds(d)));
}

}  // namespace sd::ratelimit::headers
