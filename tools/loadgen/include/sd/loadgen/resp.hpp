#pragma once
// RESP2 (Redis serialization protocol): command encoding and an incremental reply reader. Small
// on purpose — the generator needs only request/reply framing, not a client library (hiredis could
// replace it later without changing the workloads).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"

namespace sd::loadgen {

struct RespValue {
  enum class Type { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Type type = Type::kNull;
  std::string str;  // simple, error, bulk
  int64_t integer = 0;
  std::vector<RespValue> elements;  // array

  bool is_ok_status() const { return type == Type::kSimple && str == "OK"; }
  std::string describe() const;  // short human-readable form for error messages
};

// Appends the command as a RESP array of bulk strings: *N\r\n$len\r\narg\r\n...
void resp_encode(const std::vector<std::string>& args, std::string& out);
std::string resp_encode(const std::vector<std::string>& args);

// Feed bytes as they arrive; next() yields complete replies in order. A malformed stream is a
// sticky error (the connection must be dropped: framing is lost).
class RespReader {
 public:
  static constexpr size_t kMaxBulk = 64 << 20;
  static constexpr size_t kMaxDepth = 16;

  void feed(std::string_view data) { buf_.append(data); }
  // A complete reply, nullopt if more bytes are needed, or a kInternal status on a protocol error.
  Result<std::optional<RespValue>> next();
  size_t buffered() const { return buf_.size() - pos_; }
  void clear() {
    buf_.clear();
    pos_ = 0;
    error_.clear();
  }

 private:
  enum class Parse { kDone, kNeedMore, kError };
  Parse parse(size_t& pos, RespValue& out, size_t depth);
  bool read_line(size_t& pos, std::string_view& line) const;

  std::string buf_;
  size_t pos_ = 0;  // start of the first unconsumed reply
  std::string error_;
};

}  // namespace sd::loadgen
