#pragma once
// The fenced resource of the safety lab: the storage in Kleppmann's "How to do distributed
// locking" diagram. It remembers, per key, the highest fencing token it has seen and accepts an
// operation only with a token at least that high (a write: also higher than the last written
// token), so a client that lost its lock during a pause cannot overwrite a newer holder's data.
// With fencing off it accepts everything: the contrast that shows what fencing buys.
//
// FencedStore is sans-io and single-threaded: no clock, no files. Every decision comes back with
// the "resource" history event describing it; the caller passes the timestamp and logs the event.
// FencedResource (below) is the thread-safe wrapper the HTTP front uses.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sd/dlock/lab/history.hpp"

namespace sd::dlock::lab {

struct KeyState {
  std::string key;
  int64_t value = 0;  // the counter starts at 0
  uint64_t max_token_seen = 0;
  uint64_t last_written_token = 0;  // of the last accepted write (0: none yet)
  uint64_t writes_accepted = 0;
  uint64_t writes_rejected = 0;
  uint64_t reads = 0;  // accepted reads
  uint64_t reads_rejected = 0;
};

struct ReadRequest {
  std::string key;
  std::string client;
  uint64_t token = 0;
};

struct WriteRequest {
  std::string key;
  std::string client;
  uint64_t token = 0;
  int64_t value = 0;
};

// The outcome of one operation. rejected: 409 stale_token, with `reason` saying why.
struct Decision {
  bool accepted = false;
  int64_t value = 0;  // read: the value read (accepted only); write: the value written
  std::string reason;
  KeyState state;  // the key's state after the operation
  Event event;     // process "resource", f read|write, ok (accepted) | fail (rejected)
};

class FencedStore {
 public:
  explicit FencedStore(bool fencing) : fencing_(fencing) {}

  // Fenced: rejected when token < max_token_seen; an accepted read raises max_token_seen.
  Decision read(const ReadRequest& req, int64_t time_ns);
  // Fenced: rejected when token < max_token_seen or token <= last_written_token (once a write was
  // accepted). Unfenced: always accepted. An accepted write sets the value and raises
  // max_token_seen.
  Decision write(const WriteRequest& req, int64_t time_ns);
  // An unknown key is the initial state (value 0, no tokens).
  KeyState state(const std::string& key) const;
  bool fencing() const { return fencing_; }

 private:
  KeyState& slot(const std::string& key);
  bool fencing_;
  std::map<std::string, KeyState> keys_;
};

// FencedStore behind a mutex, logging each decision to a history file. The timestamp is taken
// and the event appended under the same lock as the decision, so the history's time order is the
// order in which the resource decided.
class FencedResource {
 public:
  // history may be null (no log). now: the clock for event times (default monotonic_ns).
  FencedResource(bool fencing, std::unique_ptr<HistoryWriter> history,
                 std::function<int64_t()> now = monotonic_ns);
  Decision read(const ReadRequest& req);
  Decision write(const WriteRequest& req);
  KeyState state(const std::string& key) const;
  bool fencing() const { return store_.fencing(); }
  uint64_t history_errors() const;  // appends that failed (logged to stderr once each)

 private:
  Decision log(Decision d);  // mu_ held
  std::function<int64_t()> now_;
  mutable std::mutex mu_;
  FencedStore store_;                       // guarded by mu_
  std::unique_ptr<HistoryWriter> history_;  // guarded by mu_
  uint64_t history_errors_ = 0;             // guarded by mu_
};

}  // namespace sd::dlock::lab
