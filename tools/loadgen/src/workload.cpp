// Shared helpers for workload files: variables, base64 (etcd's JSON gateway takes keys and values
// as base64 bytes), JSON quoting and field capture from replies.
#include "sd/loadgen/workload.hpp"

#include <nlohmann/json.hpp>

namespace sd::loadgen {

const std::string* Vars::find(std::string_view name) const {
  for (const auto& [k, v] : kv_)
    if (k == name) return &v;
  return nullptr;
}

const std::string& Vars::get(std::string_view name) const {
  static const std::string kEmpty;
  const std::string* v = find(name);
  return v ? *v : kEmpty;
}

void Vars::set(std::string_view name, std::string value) {
  for (auto& [k, v] : kv_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::string(name), std::move(value));
}

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t j) { return static_cast<uint32_t>(static_cast<unsigned char>(in[j])); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t n = byte(i) << 16;
    if (rest == 2) n |= byte(i + 1) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string json_escape(std::string_view s) {
  return nlohmann::json(std::string(s)).dump();
}

std::optional<std::string> json_field(std::string_view body, std::string_view field) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(field);
  if (it == j.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();  // numbers (e.g. a fencing token) keep their exact digits
}

}  // namespace sd::loadgen
