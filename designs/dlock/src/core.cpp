// LockCore: public entry points, leases, acquire/release.

#include "sd/dlock/core.hpp"

#include <algorithm>
#include <string>

#include "core_state.hpp"

namespace sd::dlock {

LockCore::LockCore(Store& store, const Clock& clock, IdGenerator& ids, CoreOptions options)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      ids_(ids),
      state_(std::make_unique<State>(store_, clock_, ids_, options_)) {}

LockCore::~LockCore() = default;

Status LockCore::recover() {
  return state_->recover();
}
Result<LeaseInfo> LockCore::create_lease(Duration ttl) {
  return state_->create_lease(ttl);
}
Result<LeaseInfo> LockCore::keepalive(const LeaseId& id) {
  return state_->keepalive(id);
}
Status LockCore::revoke_lease(const LeaseId& id) {
  return state_->revoke_lease(id);
}
Result<LeaseInfo> LockCore::lease(const LeaseId& id) {
  return state_->lease(id);
}
Result<AcquireOutcome> LockCore::acquire(const AcquireRequest& req) {
  return state_->acquire(req);
}
Status LockCore::release(Kind kind, const std::string& name, const LeaseId& lease_id, Token token) {
  return state_->release(kind, name, lease_id, token);
}
void LockCore::cancel_wait(WaiterId waiter) {
  state_->cancel_wait(waiter);
}
void LockCore::tick() {
  state_->tick();
}
std::optional<TimePoint> LockCore::next_deadline() const {
  return state_->next_deadline();
}
std::vector<WaiterEvent> LockCore::take_events() {
  std::vector<WaiterEvent> out;
  out.swap(state_->events);
  return out;
}
Status LockCore::set_group_commit(bool on) {
  return store_.set_group_commit(on);
}
bool LockCore::uncommitted() const {
  return store_.has_pending();
}
Status LockCore::commit() {
  return store_.commit_pending();
}
Status LockCore::reload() {
  store_.discard_pending();
  const WaiterId next_waiter = state_->next_waiter;
  state_ = std::make_unique<State>(store_, clock_, ids_, options_);
  state_->next_waiter = next_waiter;
  return state_->recover();
}
Result<LockInfo> LockCore::describe(Kind kind, const std::string& name) {
  return state_->describe(kind, name);
}
std::vector<LockInfo> LockCore::list(Kind kind, const std::string& prefix, size_t limit) {
  return state_->list(kind, prefix, limit);
}
CoreStats LockCore::stats() const {
  return state_->stats();
}

// ---------------------------------------------------------------------------------------------
// Leases

LeaseNode* LockCore::State::find_live(const LeaseId& id, TimePoint now) {
  auto it = leases.find(id);
  // A lease past its deadline whose expiry could not be persisted yet is already gone for callers.
  if (it == leases.end() || it->second.deadline <= now) return nullptr;
  return &*it;
}

LeaseInfo LockCore::State::lease_info(const LeaseNode& n, TimePoint now) const {
  return LeaseInfo{n.first, n.second.ttl, ms_until(now, n.second.deadline), n.second.holds.size()};
}

void LockCore::State::index_lease(LeaseNode& n) {
  lease_expiry.insert(LeaseExpiryKey{n.second.deadline, n.second.seq, &n});
}

void LockCore::State::unindex_lease(LeaseNode& n) {
  lease_expiry.erase(LeaseExpiryKey{n.second.deadline, n.second.seq, &n});
}

Result<LeaseInfo> LockCore::State::create_lease(Duration ttl) {
  tick();
  const Limits& lim = opt.limits;
  if (ttl < lim.min_ttl || ttl > lim.max_ttl) {
    return invalid_argument("ttl must be between " + std::to_string(lim.min_ttl.count()) + " and " +
                            std::to_string(lim.max_ttl.count()) + " ms");
  }
  if (leases.size() >= lim.max_leases) return resource_exhausted("too many leases");
  LeaseId id = ids.next();
  for (int attempt = 0; leases.count(id) != 0; ++attempt) {
    if (attempt == 8) return internal_error("lease id generator keeps colliding");
    id = ids.next();
  }
  SD_RETURN_IF_ERROR(store.apply({PutLease{id, ttl.count()}}));
  const TimePoint now = clock.now();
  auto [it, inserted] = leases.try_emplace(std::move(id));
  Lease& l = it->second;
  l.ttl = ttl;
  l.deadline = now + ttl;
  l.seq = next_lease_seq++;
  index_lease(*it);
  return lease_info(*it, now);
}

Result<LeaseInfo> LockCore::State::keepalive(const LeaseId& id) {
  tick();
  const TimePoint now = clock.now();
  LeaseNode* n = find_live(id, now);
  if (!n) return not_found("lease not found or expired");
  unindex_lease(*n);
  n->second.deadline = now + n->second.ttl;
  index_lease(*n);
  return lease_info(*n, now);
}

Result<LeaseInfo> LockCore::State::lease(const LeaseId& id) {
  tick();
  const TimePoint now = clock.now();
  LeaseNode* n = find_live(id, now);
  if (!n) return not_found("lease not found or expired");
  return lease_info(*n, now);
}

Plan LockCore::State::plan_lease_removal(LeaseNode* n, TimePoint at, bool with_delay) {
  Plan plan = new_plan();
  plan.batch.emplace_back(DeleteLease{n->first});
  if (!with_delay) {
    for (const HoldRef& h : n->second.holds) plan_grants(h.kind, *h.name, n, at, plan);
  }
  // Its waits vanish too, which can let those queued behind them through.
  for (Waiter* w : n->second.waits) plan_grants(w->kind, *w->name, n, at, plan);
  return plan;
}

void LockCore::State::remove_lease(LeaseNode* n, const Status& why, std::vector<HoldRef>& touched) {
  Lease& l = n->second;
  while (!l.waits.empty()) {
    Waiter& w = *l.waits.back();
    touched.push_back(HoldRef{w.name, w.kind});
    WaiterEvent ev;
    ev.waiter = w.id;
    ev.status = why;
    events.push_back(std::move(ev));
    erase_waiter(w);
  }
  while (!l.holds.empty()) {
    HoldRef h = l.holds.back();
    touched.push_back(h);
    remove_holder(h.kind, *h.name, n);
  }
  unindex_lease(*n);
}

Status LockCore::State::revoke_lease(const LeaseId& id) {
  tick();
  const TimePoint now = clock.now();
  LeaseNode* n = find_live(id, now);
  if (!n) return not_found("lease not found or expired");
  Plan plan = plan_lease_removal(n, now, /*with_delay=*/false);
  SD_RETURN_IF_ERROR(store.apply(plan.batch));
  std::vector<HoldRef> touched;
  remove_lease(n, not_found("lease gone"), touched);
  leases.erase(leases.find(id));
  commit_plan(plan);
  for (const HoldRef& t : touched) maybe_drop(t.kind, t.name);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Acquire / release

Result<AcquireOutcome> LockCore::State::acquire(const AcquireRequest& req) {
  tick();
  const Limits& lim = opt.limits;
  SD_RETURN_IF_ERROR(validate_acquire(req, lim));
  const TimePoint now = clock.now();
  LeaseNode* ln = find_live(req.lease_id, now);
  if (!ln) return not_found("lease not found or expired");
  const bool sem = req.kind == Kind::kSemaphore;
  const Mode mode = sem ? Mode::kShared : req.mode;
  const uint32_t permits = sem ? req.permits : 1;

  NameMap& m = names_of(req.kind);
  auto it = m.find(req.name);
  Active* a = (it != m.end()) ? it->second.active.get() : nullptr;
  if (a) {
    if (sem && (!a->holders.empty() || a->head) && a->limit != req.limit) {
      return conflict("limit_mismatch");
    }
    for (const Holder& h : a->holders) {
      if (h.lease != ln) continue;
      if (h.mode != mode) return conflict("mode_mismatch");
      if (h.permits != permits) return conflict("permits_mismatch");
      AcquireOutcome out;
      out.granted = true;
      out.grant = Grant{req.kind, it->first, ln->first, mode, permits, h.token};
      return out;
    }
    for (const Waiter* w : ln->second.waits) {
      if (w->name == &*it) return conflict("already_waiting");
    }
  }
  if (ln->second.holds.size() + ln->second.waits.size() >= lim.max_holds_per_lease) {
    return resource_exhausted("too many holds for this lease");
  }

  bool grantable = true;
  if (a) {
    if (a->head != nullptr) grantable = false;                                     // no barging
    if (a->delay_until != TimePoint{} && a->delay_until > now) grantable = false;  // lock-delay
    if (grantable) {
      if (sem) {
        grantable = uint64_t{a->used} + permits <= a->limit;
      } else if (!a->holders.empty()) {
        grantable = mode == Mode::kShared && a->holders.front().mode == Mode::kShared;
      }
    }
  }

  if (grantable) {
    Plan plan = new_plan();
    Token t = take_token(plan);
    plan.batch.emplace_back(
        PutHold{req.kind, req.name, ln->first, mode, permits, sem ? req.limit : 1, t});
    SD_RETURN_IF_ERROR(store.apply(plan.batch));
    counter = plan.counter;
    reserved = plan.reserved;
    if (it == m.end()) it = m.try_emplace(req.name).first;
    Active& act = ensure_active(req.kind, *it);
    if (sem) act.limit = req.limit;
    add_holder(req.kind, *it, ln, mode, permits, t);
    AcquireOutcome out;
    out.granted = true;
    out.grant = Grant{req.kind, it->first, ln->first, mode, permits, t};
    return out;
  }
  if (req.wait == Duration{0}) return conflict("locked");
  if (a && a->queued >= lim.max_waiters_per_name) {
    return resource_exhausted("too many waiters for this name");
  }
  if (it == m.end()) it = m.try_emplace(req.name).first;
  Active& act = ensure_active(req.kind, *it);
  if (sem) act.limit = req.limit;
  AcquireRequest r = req;
  r.mode = mode;
  r.permits = permits;
  Waiter& w = enqueue(r, *it, ln, now);
  AcquireOutcome out;
  out.waiter = w.id;
  return out;
}

Status LockCore::State::release(Kind kind, const std::string& name, const LeaseId& lease_id,
                                Token token) {
  tick();
  const TimePoint now = clock.now();
  LeaseNode* ln = find_live(lease_id, now);
  if (!ln) return not_found("lease not found or expired");
  NameMap& m = names_of(kind);
  auto it = m.find(name);
  if (it == m.end() || !it->second.active) return conflict("not_holder");
  const auto& hs = it->second.active->holders;
  auto h = std::find_if(hs.begin(), hs.end(),
                        [&](const Holder& x) { return x.lease == ln && x.token == token; });
  if (h == hs.end()) return conflict("not_holder");

  Plan plan = new_plan();
  plan.batch.emplace_back(DeleteHold{kind, name, lease_id});
  plan_grants(kind, *it, ln, now, plan);
  SD_RETURN_IF_ERROR(store.apply(plan.batch));
  remove_holder(kind, *it, ln);
  commit_plan(plan);
  maybe_drop(kind, &*it);
  return Status::ok();
}

void LockCore::State::cancel_wait(WaiterId id) {
  tick();
  auto it = waiters.find(id);
  if (it == waiters.end()) return;
  Kind kind = it->second.kind;
  NameNode* node = it->second.name;
  erase_waiter(it->second);
  pump(kind, node, clock.now());
}

}  // namespace sd::dlock
