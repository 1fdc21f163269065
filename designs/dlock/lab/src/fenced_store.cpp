// FencedStore: per-key token checks of the fenced resource; FencedResource: the locked, logged
// wrapper for the HTTP front.

#include "sd/dlock/lab/fenced_store.hpp"

#include <algorithm>
#include <utility>

#include "sd/base/log.hpp"

namespace sd::dlock::lab {

namespace {

Event resource_event(bool accepted, const char* f, const std::string& key,
                     const std::string& client, uint64_t token, int64_t time_ns) {
  Event e;
  e.type = accepted ? EventType::kOk : EventType::kFail;
  e.process = "resource";
  e.f = f;
  e.time_ns = time_ns;
  e.token = token;
  e.key = key;
  e.client = client;
  if (!accepted) e.error = "stale_token";
  return e;
}

}  // namespace

KeyState& FencedStore::slot(const std::string& key) {
  auto [it, inserted] = keys_.try_emplace(key);
  if (inserted) it->second.key = key;
  return it->second;
}

Decision FencedStore::read(const ReadRequest& req, int64_t time_ns) {
  KeyState& s = slot(req.key);
  Decision d;
  if (fencing_ && req.token < s.max_token_seen) {
    d.reason = "token " + std::to_string(req.token) + " is older than token " +
               std::to_string(s.max_token_seen) + " already seen for key " + req.key;
    ++s.reads_rejected;
  } else {
    d.accepted = true;
    d.value = s.value;
    s.max_token_seen = std::max(s.max_token_seen, req.token);
    ++s.reads;
  }
  d.state = s;
  d.event = resource_event(d.accepted, "read", req.key, req.client, req.token, time_ns);
  if (d.accepted) d.event.value = d.value;
  return d;
}

Decision FencedStore::write(const WriteRequest& req, int64_t time_ns) {
  KeyState& s = slot(req.key);
  Decision d;
  d.value = req.value;
  if (fencing_ && req.token < s.max_token_seen) {
    d.reason = "token " + std::to_string(req.token) + " is older than token " +
               std::to_string(s.max_token_seen) + " already seen for key " + req.key;
  } else if (fencing_ && s.writes_accepted > 0 && req.token <= s.last_written_token) {
    d.reason = "token " + std::to_string(req.token) + " is not newer than token " +
               std::to_string(s.last_written_token) + " of the last write to key " + req.key;
  } else {
    d.accepted = true;
  }
  if (d.accepted) {
    s.value = req.value;
    s.last_written_token = req.token;
    s.max_token_seen = std::max(s.max_token_seen, req.token);
    ++s.writes_accepted;
  } else {
    ++s.writes_rejected;
  }
  d.state = s;
  d.event = resource_event(d.accepted, "write", req.key, req.client, req.token, time_ns);
  d.event.value = req.value;
  return d;
}

KeyState FencedStore::state(const std::string& key) const {
  auto it = keys_.find(key);
  if (it != keys_.end()) return it->second;
  KeyState s;
  s.key = key;
  return s;
}

FencedResource::FencedResource(bool fencing, std::unique_ptr<HistoryWriter> history,
                               std::function<int64_t()> now)
    : now_(std::move(now)), store_(fencing), history_(std::move(history)) {}

Decision FencedResource::log(Decision d) {
  if (history_) {
    Status st = history_->append(d.event);
    if (!st.is_ok()) {
      // The decision stands (the client saw it); the experiment's history is now incomplete,
      // which the lab must know about.
      ++history_errors_;
      SD_LOG(kError) << "dlock-lab-resource: history append failed: " << st.to_string();
    }
  }
  return d;
}

Decision FencedResource::read(const ReadRequest& req) {
  std::lock_guard lk(mu_);
  return log(store_.read(req, now_()));
}

Decision FencedResource::write(const WriteRequest& req) {
  std::lock_guard lk(mu_);
  return log(store_.write(req, now_()));
}

KeyState FencedResource::state(const std::string& key) const {
  std::lock_guard lk(mu_);
  return store_.state(key);
}

uint64_t FencedResource::history_errors() const {
  std::lock_guard lk(mu_);
  return history_errors_;
}

}  // namespace sd::dlock::lab
