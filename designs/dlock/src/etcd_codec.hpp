#pragma once
// Pure helpers of the etcd:// backend (no I/O, unit-tested): the JSON gateway's encodings
// (base64 keys/values, int64 as decimal strings, gRPC error bodies), the key layout, a splitter
// for the watch stream, and the queue evaluation that decides who holds a lock.
//
// Key layout: sd-dlock/<kind>/<escaped name>/<lease id in hex>. Names are escaped ('%' and '/'
// percent-encoded) so that "a" and "a/b" never share a key prefix; the escaping is byte-wise and
// prefix-free, so a name prefix maps to a key prefix (list() ranges over it).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/base/status.hpp"
#include "sd/dlock/types.hpp"

namespace sd::dlock::etcd {

std::string base64_encode(std::string_view in);
Result<std::string> base64_decode(std::string_view in);

// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix
// range); "\0" (all keys) if prefix is empty or all 0xff.
std::string prefix_range_end(std::string_view prefix);

std::string escape_name(std::string_view name);
std::optional<std::string> unescape_name(std::string_view escaped);

// "sd-dlock/lock/" or "sd-dlock/semaphore/".
std::string kind_root(Kind kind);
// kind_root + escaped name + "/": every key of one lock.
std::string name_prefix(Kind kind, std::string_view name);

// Lease ids: etcd's int64 (decimal in JSON) <-> our LeaseId (lowercase hex, like etcd's keys).
std::string lease_hex(int64_t id);
std::optional<int64_t> parse_lease_hex(std::string_view hex);
// An int64 field of a gateway response ("123" or 123; absent = 0, the proto3 default).
int64_t int_field(const nlohmann::json& j, const char* name);

// A non-2xx gateway response -> Status. gRPC codes: 5 NotFound -> kNotFound; 14 Unavailable,
// 4 DeadlineExceeded, 10 Aborted, 1 Canceled and HTTP 5xx without a code -> kUnavailable (worth
// another endpoint); 3 InvalidArgument -> kInvalidArgument; anything else -> kInternal.
Status status_from_gateway(int http_status, std::string_view body);

// Splits a stream of concatenated top-level JSON objects (the gateway's watch output) into
// complete objects, across arbitrary chunk boundaries.
class JsonStreamSplitter {
 public:
  // Appends data; returns the objects completed by it, in order.
  std::vector<std::string> feed(std::string_view data);

 private:
  std::string pending_;  // bytes of the current, incomplete object
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

// One key under a lock's prefix, as decoded from a range response.
struct QueueEntry {
  std::string key;
  std::string lease;  // hex
  int64_t create_revision = 0;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  uint32_t limit = 1;
};

// The value stored in a key: {"mode":"shared"} for locks, {"permits":2,"limit":5} for
// semaphores.
std::string encode_value(Kind kind, Mode mode, uint32_t permits, uint32_t limit);
// Decodes a range response's "kvs" (in create-revision order); skips undecodable entries.
std::vector<QueueEntry> decode_kvs(Kind kind, const nlohmann::json& kvs);

// How many entries at the front of `queue` (sorted by create revision) hold the lock; the rest
// wait, FIFO. Exclusive: only the first. Shared (etcd recipes' RWMutex): a reader holds when no
// writer is ahead of it, a writer only when first. Semaphore: an entry holds when its permits
// plus all earlier entries' permits fit in `limit` (ordered keys, no barging).
size_t holder_count(Kind kind, const std::vector<QueueEntry>& queue, uint32_t limit);

// For a waiter at `index` (not a holder): the create revision-ordered index of the key whose
// deletion it waits for -- the last key ahead of it for a writer, the last writer ahead of it for
// a reader -- or nullopt when any deletion ahead can unblock it (semaphores: watch the prefix).
std::optional<size_t> wait_target(Kind kind, const std::vector<QueueEntry>& queue, size_t index);

}  // namespace sd::dlock::etcd
