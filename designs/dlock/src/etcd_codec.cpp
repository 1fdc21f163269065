// Pure helpers of the etcd:// backend; see etcd_codec.hpp.

#include "etcd_codec.hpp"

#include <array>
#include <charconv>
#include <cstdio>

namespace sd::dlock::etcd {
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // also accept the URL-safe alphabet
  if (c == '/' || c == '_') return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                 uint32_t(uint8_t(in[i + 2]));
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return invalid_argument("bad base64 length");
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64_value(c);
    if (v < 0) return invalid_argument("bad base64 character");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string escape_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '%' || c == '/') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> unescape_name(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '%') {
      out += escaped[i];
      continue;
    }
    if (i + 2 >= escaped.size()) return std::nullopt;
    int hi = hex_value(escaped[i + 1]), lo = hex_value(escaped[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += char(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string kind_root(Kind kind) {
  return "sd-dlock/" + std::string(kind_name(kind)) + "/";
}

std::string name_prefix(Kind kind, std::string_view name) {
  return kind_root(kind) + escape_name(name) + "/";
}

std::string lease_hex(int64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

std::optional<int64_t> parse_lease_hex(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
  if (ec != std::errc() || end != hex.data() + hex.size()) return std::nullopt;
  // Only lowercase canonical form, so one lease has one LeaseId (it is part of the key).
  if (lease_hex(static_cast<int64_t>(v)) != hex) return std::nullopt;
  return static_cast<int64_t>(v);
}

int64_t int_field(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) return v;
  }
  return 0;
}

Status status_from_gateway(int http_status, std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  int64_t code = -1;
  if (j.is_object()) {
    if (auto it = j.find("error"); it != j.end() && it->is_string()) message = *it;
    if (message.empty()) {
      if (auto it = j.find("message"); it != j.end() && it->is_string()) message = *it;
    }
    if (j.contains("code")) code = int_field(j, "code");
  }
  if (message.empty()) message = "HTTP " + std::to_string(http_status);
  message = "etcd: " + message;
  switch (code) {
    case 5:
      return not_found(message);
    case 1:
    case 4:
    case 10:
    case 14:
      return unavailable(message);
    case 3:
      return invalid_argument(message);
    case -1:
      if (http_status >= 500 || http_status == 408) return unavailable(message);
      break;
    default:
      break;
  }
  return internal_error(message);
}

std::vector<std::string> JsonStreamSplitter::feed(std::string_view data) {
  std::vector<std::string> out;
  for (char c : data) {
    if (depth_ == 0) {
      if (c != '{') continue;  // whitespace/newlines between objects
    }
    pending_ += c;
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        out.push_back(std::move(pending_));
        pending_.clear();
      }
    }
  }
  return out;
}

std::string encode_value(Kind kind, Mode mode, uint32_t permits, uint32_t limit) {
  nlohmann::json j;
  if (kind == Kind::kLock) {
    j["mode"] = std::string(mode_name(mode));
  } else {
    j["permits"] = permits;
    j["limit"] = limit;
  }
  return j.dump();
}

std::vector<QueueEntry> decode_kvs(Kind kind, const nlohmann::json& kvs) {
  std::vector<QueueEntry> out;
  if (!kvs.is_array()) return out;
  for (const auto& kv : kvs) {
    QueueEntry e;
    auto key = base64_decode(kv.value("key", std::string()));
    if (!key) continue;
    e.key = std::move(*key);
    auto slash = e.key.rfind('/');
    if (slash == std::string::npos) continue;
    e.lease = e.key.substr(slash + 1);
    e.create_revision = int_field(kv, "create_revision");
    auto value = base64_decode(kv.value("value", std::string()));
    auto v = nlohmann::json::parse(value ? *value : std::string(), nullptr, false);
    if (kind == Kind::kSemaphore) {
      e.mode = Mode::kShared;
      if (v.is_object()) {
        e.permits = static_cast<uint32_t>(std::max<int64_t>(1, int_field(v, "permits")));
        e.limit = static_cast<uint32_t>(std::max<int64_t>(1, int_field(v, "limit")));
      }
    } else if (v.is_object()) {
      auto m = parse_mode(v.value("mode", std::string()));
      e.mode = m ? *m : Mode::kExclusive;
    }
    out.push_back(std::move(e));
  }
  return out;
}

size_t holder_count(Kind kind, const std::vector<QueueEntry>& queue, uint32_t limit) {
  if (kind == Kind::kSemaphore) {
    uint64_t used = 0;
    size_t n = 0;
    for (const auto& e : queue) {
      used += e.permits;
      if (used > limit) break;
      ++n;
    }
    return n;
  }
  if (queue.empty()) return 0;
  if (queue.front().mode == Mode::kExclusive) return 1;
  size_t n = 0;
  while (n < queue.size() && queue[n].mode == Mode::kShared) ++n;  // readers up to a writer
  return n;
}

std::optional<size_t> wait_target(Kind kind, const std::vector<QueueEntry>& queue, size_t index) {
  if (kind == Kind::kSemaphore || index == 0 || index > queue.size()) return std::nullopt;
  if (queue[index].mode == Mode::kExclusive) return index - 1;
  for (size_t i = index; i-- > 0;) {
    if (queue[i].mode == Mode::kExclusive) return i;
  }
  return std::nullopt;  // a reader with no writer ahead holds; callers do not ask
}

}  // namespace sd::dlock::etcd
