// RESP2 framing. The reader re-parses a reply from its first byte until it is complete: replies in
// these workloads are a few bytes, so simplicity beats a resumable state machine.
#include "sd/loadgen/resp.hpp"

#include <charconv>

namespace sd::loadgen {

std::string RespValue::describe() const {
  switch (type) {
    case Type::kSimple:
      return "+" + str;
    case Type::kError:
      return "-" + str;
    case Type::kInteger:
      return ":" + std::to_string(integer);
    case Type::kBulk:
      return "$" + (str.size() > 64 ? str.substr(0, 64) + "..." : str);
    case Type::kNull:
      return "(nil)";
    case Type::kArray:
      return "*" + std::to_string(elements.size()) + " elements";
  }
  return "?";
}

void resp_encode(const std::vector<std::string>& args, std::string& out) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const auto& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

std::string resp_encode(const std::vector<std::string>& args) {
  std::string out;
  resp_encode(args, out);
  return out;
}

bool RespReader::read_line(size_t& pos, std::string_view& line) const {
  size_t end = buf_.find("\r\n", pos);
  if (end == std::string::npos) return false;
  line = std::string_view(buf_).substr(pos, end - pos);
  pos = end + 2;
  return true;
}

namespace {
bool to_int(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

RespReader::Parse RespReader::parse(size_t& pos, RespValue& out, size_t depth) {
  if (depth > kMaxDepth) {
    error_ = "RESP nesting too deep";
    return Parse::kError;
  }
  if (pos >= buf_.size()) return Parse::kNeedMore;
  char type = buf_[pos];
  size_t p = pos + 1;
  std::string_view line;
  if (!read_line(p, line)) return Parse::kNeedMore;
  switch (type) {
    case '+':
    case '-':
      out.type = type == '+' ? RespValue::Type::kSimple : RespValue::Type::kError;
      out.str.assign(line);
      break;
    case ':':
      out.type = RespValue::Type::kInteger;
      if (!to_int(line, out.integer)) {
        error_ = "bad RESP integer";
        return Parse::kError;
      }
      break;
    case '$': {
      int64_t len = 0;
      if (!to_int(line, len) || len < -1 || (len > 0 && static_cast<uint64_t>(len) > kMaxBulk)) {
        error_ = "bad RESP bulk length";
        return Parse::kError;
      }
      if (len == -1) {
        out.type = RespValue::Type::kNull;
        break;
      }
      auto n = static_cast<size_t>(len);
      if (buf_.size() - p < n + 2) return Parse::kNeedMore;
      if (buf_.compare(p + n, 2, "\r\n") != 0) {
        error_ = "RESP bulk not terminated by CRLF";
        return Parse::kError;
      }
      out.type = RespValue::Type::kBulk;
      out.str.assign(buf_, p, n);
      p += n + 2;
      break;
    }
    case '*': {
      int64_t n = 0;
      if (!to_int(line, n) || n < -1 || n > (1 << 20)) {
        error_ = "bad RESP array length";
        return Parse::kError;
      }
      if (n == -1) {
        out.type = RespValue::Type::kNull;
        break;
      }
      out.type = RespValue::Type::kArray;
      out.elements.clear();
      out.elements.resize(static_cast<size_t>(n));
      for (auto& e : out.elements) {
        Parse r = parse(p, e, depth + 1);
        if (r != Parse::kDone) return r;
      }
      break;
    }
    default:
      error_ = std::string("unexpected RESP type byte '") + type + "'";
      return Parse::kError;
  }
  pos = p;
  return Parse::kDone;
}

Result<std::optional<RespValue>> RespReader::next() {
  if (!error_.empty()) return internal_error(error_);
  RespValue v;
  size_t p = pos_;
  switch (parse(p, v, 0)) {
    case Parse::kNeedMore:
      return std::optional<RespValue>();
    case Parse::kError:
      return internal_error(error_);
    case Parse::kDone:
      break;
  }
  pos_ = p;
  // Compact once everything is consumed (the common case: one reply per read) or the dead prefix
  // dominates, so the buffer never grows without bound.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<RespValue>(std::move(v));
}

}  // namespace sd::loadgen
