// etcd://h1:p1,h2:p2,... backend: etcd v3 through its JSON gateway (no gRPC dependency).
//
// Leases are etcd leases (TTL in whole seconds, rounded up; etcd raises it to its minimum, and the
// TTL it granted is what grant_lease returns). Locks follow etcd's concurrency.Mutex algorithm:
//   1. one txn: if my key (prefix/<lease>) has create revision 0, put it with my lease, else get
//      it; either way also read the whole prefix sorted by create revision;
//   2. the keys in create-revision order are the FIFO queue; the front of it holds (holder_count:
//      one writer, or readers up to the first writer, or semaphore entries whose permits fit);
//   3. a waiter watches (from the revision of its last read + 1, so nothing is missed) for the
//      deletion of the key it waits for -- the last key ahead (writers), the last writer ahead
//      (readers), any key of the name (semaphores) -- then re-reads the queue and goes to 2;
//   4. every decision comes from one consistent read in which MY key must still exist: a waiter
//      whose lease expired while waiting (its key was deleted with the lease) gets kNotFound, never
//      the lock (the Jepsen etcd 3.4.3 finding);
//   5. try-lock / timeout: delete my key (only if it still has my create revision) -> "locked".
// The fencing token is my key's create revision: cluster-wide increasing, never reused.

#include <algorithm>
#include <thread>

#include "backend_impl.hpp"
#include "etcd_codec.hpp"
#include "etcd_transport.hpp"

namespace sd::dlock {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using etcd::base64_encode;
using etcd::int_field;
using etcd::QueueEntry;

// Upper bound of one watch before the queue is re-read anyway: a watch on a member cut off from
// the quorum would otherwise stay silent.
constexpr std::chrono::milliseconds kWatchSlice{2'000};
constexpr std::chrono::milliseconds kBrokenWatchPause{20};
constexpr size_t kMaxTtlLookups = 64;  // describe: per-holder lease TTL queries
constexpr int64_t kListLimit = 100'000;

Status lease_not_found() {
  return not_found("lease not found or expired");
}

json prefix_range(const std::string& prefix, bool by_create) {
  json r{{"key", base64_encode(prefix)},
         {"range_end", base64_encode(etcd::prefix_range_end(prefix))}};
  if (by_create) {
    r["sort_target"] = "CREATE";
    r["sort_order"] = "ASCEND";
  } else {
    r["sort_target"] = "KEY";
    r["sort_order"] = "ASCEND";
    r["limit"] = std::to_string(kListLimit);
  }
  return r;
}

// The i-th response of a txn, unwrapped ("response_range" etc.).
const json* txn_response(const json& txn, size_t i, const char* kind) {
  auto it = txn.find("responses");
  if (it == txn.end() || !it->is_array() || i >= it->size()) return nullptr;
  auto inner = (*it)[i].find(kind);
  return inner == (*it)[i].end() ? nullptr : &*inner;
}

json kvs_of(const json* range) {
  if (range == nullptr) return json::array();
  auto it = range->find("kvs");
  return it == range->end() ? json::array() : *it;
}

int64_t revision_of(const json& response) {
  auto it = response.find("header");
  return it == response.end() ? 0 : int_field(*it, "revision");
}

class EtcdBackend final : public Backend {
 public:
  EtcdBackend(const BackendUri& uri, const BackendOptions& options)
      : options_(options), transport_(uri.hosts, options) {
    uri_ = "etcd://" + transport_.endpoints_text();
  }

  Result<LeaseGrant> grant_lease(Duration ttl) override {
    if (ttl.count() <= 0) return invalid_argument("ttl must be positive");
    const long long secs = std::max<long long>(1, (ttl.count() + 999) / 1000);  // round up
    auto r = transport_.call("/v3/lease/grant", json{{"TTL", secs}});
    if (!r) return r.status();
    const int64_t id = int_field(*r, "ID");
    const int64_t granted = int_field(*r, "TTL");
    if (auto e = r->value("error", std::string()); !e.empty() || id == 0 || granted <= 0) {
      return internal_error("etcd: lease grant failed" + (e.empty() ? std::string() : ": " + e));
    }
    return LeaseGrant{etcd::lease_hex(id), Duration{granted * 1000}};
  }

  Status keepalive(const LeaseId& id) override {
    auto lease = etcd::parse_lease_hex(id);
    if (!lease) return lease_not_found();
    auto r = transport_.call("/v3/lease/keepalive", json{{"ID", std::to_string(*lease)}});
    if (!r) return r.status();
    // A streaming RPC through the gateway: {"result": {...}} or {"error": {...}}.
    auto res = r->find("result");
    if (res == r->end()) return unavailable("etcd: keepalive failed: " + r->dump());
    if (int_field(*res, "TTL") <= 0) return lease_not_found();
    return Status::ok();
  }

  Status revoke(const LeaseId& id) override {
    auto lease = etcd::parse_lease_hex(id);
    if (!lease) return lease_not_found();
    bool resent = false;
    auto r = transport_.call("/v3/lease/revoke", json{{"ID", std::to_string(*lease)}}, &resent);
    if (!r && r.status().code() == Code::kNotFound)
      return resent ? Status::ok() : lease_not_found();
    return r.status();
  }

  Result<Grant> acquire(const AcquireRequest& req) override {
    return acquire_chunked(req, options_.max_wait_per_call,
                           [this](const AcquireRequest& r) { return acquire_once(r); });
  }

  Status release(Kind kind, const std::string& name, const LeaseId& lease_id,
                 Token token) override {
    auto lease = etcd::parse_lease_hex(lease_id);
    if (!lease) return lease_not_found();
    const std::string key = etcd::name_prefix(kind, name) + lease_id;
    bool resent = false;
    auto r =
        transport_.call("/v3/kv/txn", delete_if_mine(key, static_cast<int64_t>(token)), &resent);
    if (!r) return r.status();
    if (r->value("succeeded", false)) return Status::ok();
    if (resent) return Status::ok();  // the first attempt may have deleted it
    auto alive = lease_alive(*lease);
    if (alive.is_ok() && !*alive) return lease_not_found();
    return conflict("not_holder");
  }

  Result<LockInfo> describe(Kind kind, const std::string& name) override {
    SD_RETURN_IF_ERROR(validate_name(name, Limits{}.max_name_bytes));
    auto r = transport_.call("/v3/kv/range", prefix_range(etcd::name_prefix(kind, name), true));
    if (!r) return r.status();
    auto queue = etcd::decode_kvs(kind, kvs_of(&*r));
    if (queue.empty()) return not_found(std::string(kind_name(kind)) + " not found");
    LockInfo info = info_of(kind, name, queue);
    for (size_t i = 0; i < info.holders.size() && i < kMaxTtlLookups; ++i) {
      auto lease = etcd::parse_lease_hex(info.holders[i].lease_id);
      if (!lease) continue;
      auto t = transport_.call("/v3/lease/timetolive", json{{"ID", std::to_string(*lease)}});
      if (t) info.holders[i].ttl_ms_left = std::max<int64_t>(0, int_field(*t, "TTL")) * 1000;
    }
    return info;
  }

  Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) override {
    const std::string root = etcd::kind_root(kind);
    auto r = transport_.call("/v3/kv/range", prefix_range(root + etcd::escape_name(prefix), false));
    if (!r) return r.status();
    // Sorted by key, so each name's keys are adjacent; each group is then ordered by revision.
    std::vector<LockInfo> out;
    std::vector<QueueEntry> group;
    std::string group_name;
    auto flush = [&] {
      if (group.empty()) return;
      std::sort(group.begin(), group.end(), [](const QueueEntry& a, const QueueEntry& b) {
        return a.create_revision < b.create_revision;
      });
      out.push_back(info_of(kind, group_name, group));
      group.clear();
    };
    for (auto& e : etcd::decode_kvs(kind, kvs_of(&*r))) {
      auto slash = e.key.rfind('/');
      auto name = etcd::unescape_name(std::string_view(e.key).substr(
          root.size(), slash == std::string::npos ? 0 : slash - root.size()));
      if (!name || slash == std::string::npos || slash < root.size()) continue;
      if (*name != group_name) flush();
      group_name = std::move(*name);
      group.push_back(std::move(e));
    }
    flush();
    // Escaping changes byte order ('%' < '/'): order by name like the other engines.
    std::sort(out.begin(), out.end(),
              [](const LockInfo& a, const LockInfo& b) { return a.name < b.name; });
    return out;
  }

  std::string uri() const override { return uri_; }

 private:
  static LockInfo info_of(Kind kind, const std::string& name,
                          const std::vector<QueueEntry>& queue) {
    LockInfo info;
    info.kind = kind;
    info.name = name;
    info.limit = kind == Kind::kLock ? 1 : queue.front().limit;
    const size_t holders = etcd::holder_count(kind, queue, info.limit);
    for (size_t i = 0; i < queue.size(); ++i) {
      const auto& e = queue[i];
      info.last_token = std::max(info.last_token, static_cast<Token>(e.create_revision));
      if (i < holders) {
        info.holders.push_back(
            HolderInfo{e.lease, e.mode, e.permits, static_cast<Token>(e.create_revision), 0});
      } else {
        info.waiters.push_back(WaiterInfo{e.lease, e.mode, e.permits, 0});  // deadline unknown
      }
    }
    return info;
  }

  static json delete_if_mine(const std::string& key, int64_t create_revision) {
    const std::string k = base64_encode(key);
    return json{
        {"compare", json::array({json{{"key", k},
                                      {"target", "CREATE"},
                                      {"result", "EQUAL"},
                                      {"create_revision", std::to_string(create_revision)}}})},
        {"success", json::array({json{{"request_delete_range", json{{"key", k}}}}})}};
  }

  // Whether the lease still exists (TTL -1 from timetolive: it expired or was revoked).
  Result<bool> lease_alive(int64_t lease) {
    auto r = transport_.call("/v3/lease/timetolive", json{{"ID", std::to_string(lease)}});
    if (!r) return r.status();
    return int_field(*r, "TTL") > 0;
  }

  // The core's limits, except the wait: acquire_chunked already split it per call.
  Status validate(const AcquireRequest& req) const {
    Limits lim;
    lim.max_wait = std::max(lim.max_wait, options_.max_wait_per_call);
    return validate_acquire(req, lim);
  }

  Result<Grant> acquire_once(const AcquireRequest& req);

  BackendOptions options_;
  etcd::Transport transport_;
  std::string uri_;
};

Result<Grant> EtcdBackend::acquire_once(const AcquireRequest& req) {
  SD_RETURN_IF_ERROR(validate(req));
  auto lease = etcd::parse_lease_hex(req.lease_id);
  if (!lease) return lease_not_found();
  const auto deadline = SteadyClock::now() + req.wait;
  const bool sem = req.kind == Kind::kSemaphore;
  const Mode mode = sem ? Mode::kShared : req.mode;
  const uint32_t permits = sem ? req.permits : 1;
  const uint32_t limit = sem ? req.limit : 1;
  const std::string prefix = etcd::name_prefix(req.kind, req.name);
  const std::string my_key = prefix + req.lease_id;
  const std::string k = base64_encode(my_key);
  const json queue_read = json{{"request_range", prefix_range(prefix, true)}};

  // Step 1: create my key unless it exists; read the queue in the same txn.
  json txn{{"compare",
            json::array({json{
                {"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}})},
           {"success",
            json::array({json{{"request_put", json{{"key", k},
                                                   {"value", base64_encode(etcd::encode_value(
                                                                 req.kind, mode, permits, limit))},
                                                   {"lease", std::to_string(*lease)}}}},
                         queue_read})},
           {"failure", json::array({json{{"request_range", json{{"key", k}}}}, queue_read})}};
  bool resent = false;
  auto r = transport_.call("/v3/kv/txn", txn, &resent);
  if (!r) {
    if (r.status().code() == Code::kNotFound) return lease_not_found();  // lease gone
    return r.status();
  }
  int64_t revision = revision_of(*r);
  auto queue = etcd::decode_kvs(req.kind, kvs_of(txn_response(*r, 1, "response_range")));
  auto mine = std::find_if(queue.begin(), queue.end(),
                           [&](const QueueEntry& e) { return e.key == my_key; });
  if (mine == queue.end()) return internal_error("etcd: my key is missing right after the txn");
  const int64_t my_rev = mine->create_revision;
  // Our key was already there (and not from a resent attempt of this very txn): the same lease
  // holds or waits for this name already -- answer like the other engines do.
  const bool preexisting = !r->value("succeeded", false) && !resent;
  if (preexisting) {
    if (mine->mode != mode) return conflict("mode_mismatch");
    if (mine->permits != permits) return conflict("permits_mismatch");
  }
  auto give_up = [&](Status why) -> Result<Grant> {
    if (!preexisting) (void)transport_.call("/v3/kv/txn", delete_if_mine(my_key, my_rev));
    return why;
  };
  if (sem && !preexisting) {
    for (const auto& e : queue) {
      if (e.key != my_key && e.limit != limit) return give_up(conflict("limit_mismatch"));
    }
  }

  while (true) {
    // Step 2/4: decide from one consistent read that must contain my key with my revision.
    mine = std::find_if(queue.begin(), queue.end(), [&](const QueueEntry& e) {
      return e.key == my_key && e.create_revision == my_rev;
    });
    if (mine == queue.end()) {
      auto alive = lease_alive(*lease);
      if (alive.is_ok() && !*alive) return lease_not_found();
      return conflict("locked");  // my key was deleted by someone else: not granted
    }
    const size_t index = static_cast<size_t>(mine - queue.begin());
    if (index < etcd::holder_count(req.kind, queue, limit)) {
      return Grant{req.kind, req.name, req.lease_id, mode, permits, static_cast<Token>(my_rev)};
    }
    if (preexisting) return conflict("already_waiting");
    if (req.wait.count() == 0 || SteadyClock::now() >= deadline) {
      return give_up(conflict("locked"));
    }
    // Step 3: wait for a deletion ahead of me, from just after the revision of my last read.
    auto target = etcd::wait_target(req.kind, queue, index);
    const std::string watch_key = target ? queue[*target].key : prefix;
    const std::string watch_end = target ? std::string() : etcd::prefix_range_end(prefix);
    auto w = transport_.watch_deletes(watch_key, watch_end, revision + 1,
                                      std::min(deadline, SteadyClock::now() + kWatchSlice));
    if (!w) return give_up(w.status());
    if (*w == etcd::WatchOutcome::kBroken) std::this_thread::sleep_for(kBrokenWatchPause);
    auto again = transport_.call("/v3/kv/range", prefix_range(prefix, true));
    if (!again) return give_up(again.status());
    revision = revision_of(*again);
    queue = etcd::decode_kvs(req.kind, kvs_of(&*again));
  }
}

}  // namespace

Result<std::shared_ptr<Backend>> open_etcd_backend(const BackendUri& uri,
                                                   const BackendOptions& options) {
  if (uri.hosts.empty()) return invalid_argument("etcd:// needs at least one host:port");
  return std::shared_ptr<Backend>(std::make_shared<EtcdBackend>(uri, options));
}

}  // namespace sd::dlock
