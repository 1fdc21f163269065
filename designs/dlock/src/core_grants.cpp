// LockCore internals: names, holders, waiters and the FIFO grant walk.

#include <algorithm>
#include <cassert>

#include "core_state.hpp"
#include "sd/base/log.hpp"

namespace sd::dlock {

LockCore::State::~State() = default;

// ---------------------------------------------------------------------------------------------
// Names and holders

Active& LockCore::State::ensure_active(Kind /*kind*/, NameNode& node) {
  if (!node.second.active) {
    node.second.active = std::make_unique<Active>();
    ++active_names;
  }
  return *node.second.active;
}

void LockCore::State::maybe_drop(Kind kind, NameNode* node) {
  NameEntry& e = node->second;
  if (e.active) {
    const Active& a = *e.active;
    if (!a.holders.empty() || a.head != nullptr || a.delay_until != TimePoint{}) return;
    e.active.reset();
    --active_names;
  }
  if (e.last_token == 0) {
    NameMap& m = names_of(kind);
    m.erase(m.find(node->first));
  }
}

void LockCore::State::add_holder(Kind kind, NameNode& node, LeaseNode* lease, Mode mode,
                                 uint32_t permits, Token token) {
  Active& a = ensure_active(kind, node);
  if (a.holders.capacity() == 0) a.holders.reserve(1);  // exactly one for the common case
  a.holders.push_back(Holder{lease, token, permits, mode});
  if (kind == Kind::kSemaphore) a.used += permits;
  lease->second.holds.push_back(HoldRef{&node, kind});
  node.second.last_token = std::max(node.second.last_token, token);
  ++hold_count;
}

void LockCore::State::remove_holder(Kind kind, NameNode& node, LeaseNode* lease) {
  Active& a = *node.second.active;
  auto it = std::find_if(a.holders.begin(), a.holders.end(),
                         [&](const Holder& h) { return h.lease == lease; });
  assert(it != a.holders.end());
  if (kind == Kind::kSemaphore) a.used -= it->permits;
  a.holders.erase(it);
  if (a.holders.empty()) a.holders.shrink_to_fit();
  auto& holds = lease->second.holds;
  // Scan from the back: recently acquired holds are the likeliest to be released.
  for (size_t i = holds.size(); i-- > 0;) {
    if (holds[i].name == &node && holds[i].kind == kind) {
      holds[i] = holds.back();
      holds.pop_back();
      break;
    }
  }
  --hold_count;
}

void LockCore::State::set_delay(Kind kind, NameNode& node, TimePoint until) {
  Active& a = ensure_active(kind, node);
  if (a.delay_until != TimePoint{}) {
    if (a.delay_until >= until) return;
    delay_ends.erase(DelayKey{a.delay_until, kind, &node});
  }
  a.delay_until = until;
  delay_ends.insert(DelayKey{until, kind, &node});
}

void LockCore::State::clear_delay(Kind kind, NameNode& node) {
  Active& a = *node.second.active;
  if (a.delay_until == TimePoint{}) return;
  delay_ends.erase(DelayKey{a.delay_until, kind, &node});
  a.delay_until = TimePoint{};
}

// ---------------------------------------------------------------------------------------------
// Waiters

Waiter& LockCore::State::enqueue(const AcquireRequest& req, NameNode& node, LeaseNode* lease,
                                 TimePoint now) {
  Active& a = ensure_active(req.kind, node);
  WaiterId id = next_waiter++;
  Waiter& w = waiters[id];
  w.id = id;
  w.lease = lease;
  w.name = &node;
  w.kind = req.kind;
  w.mode = req.kind == Kind::kSemaphore ? Mode::kShared : req.mode;
  w.permits = req.kind == Kind::kSemaphore ? req.permits : 1;
  w.deadline = now + req.wait;
  w.prev = a.tail;
  if (a.tail) {
    a.tail->next = &w;
  } else {
    a.head = &w;
  }
  a.tail = &w;
  ++a.queued;
  lease->second.waits.push_back(&w);
  wait_expiry.emplace(w.deadline, id);
  return w;
}

void LockCore::State::unlink_waiter(Waiter& w) {
  Active& a = *w.name->second.active;
  (w.prev ? w.prev->next : a.head) = w.next;
  (w.next ? w.next->prev : a.tail) = w.prev;
  w.prev = w.next = nullptr;
  --a.queued;
  auto& ws = w.lease->second.waits;
  auto it = std::find(ws.begin(), ws.end(), &w);
  assert(it != ws.end());
  *it = ws.back();
  ws.pop_back();
  wait_expiry.erase({w.deadline, w.id});
}

void LockCore::State::erase_waiter(Waiter& w) {
  unlink_waiter(w);
  const WaiterId id = w.id;  // copy: w dies with the node
  waiters.erase(id);
}

// ---------------------------------------------------------------------------------------------
// Grants

Plan LockCore::State::new_plan() const {
  Plan p;
  p.counter = counter;
  p.reserved = reserved;
  return p;
}

Token LockCore::State::take_token(Plan& plan) const {
  Token t = ++plan.counter;
  if (t > plan.reserved) {
    const Token block = opt.token_block == 0 ? 1 : opt.token_block;
    plan.reserved = t - 1 + block;
    plan.batch.emplace_back(ReserveTokens{plan.reserved});
  }
  return t;
}

void LockCore::State::plan_grants(Kind kind, NameNode& node, const LeaseNode* gone, TimePoint at,
                                  Plan& plan) {
  if (!node.second.active) return;
  Active& a = *node.second.active;
  if (a.delay_until != TimePoint{} && a.delay_until > at) return;
  if (a.head == nullptr) return;
  bool exclusive = false;
  size_t shared = 0;
  uint64_t used = 0;
  for (const Holder& h : a.holders) {
    if (h.lease == gone) continue;
    if (kind == Kind::kSemaphore) {
      used += h.permits;
    } else if (h.mode == Mode::kExclusive) {
      exclusive = true;
    } else {
      ++shared;
    }
  }
  for (Waiter* w = a.head; w != nullptr; w = w->next) {
    if (w->lease == gone) continue;
    bool fits;
    if (kind == Kind::kSemaphore) {
      fits = used + w->permits <= a.limit;
    } else {
      fits = w->mode == Mode::kExclusive ? (!exclusive && shared == 0) : !exclusive;
    }
    if (!fits) break;  // strict FIFO: nobody overtakes the head
    Token t = take_token(plan);
    plan.batch.emplace_back(
        PutHold{kind, node.first, w->lease->first, w->mode, w->permits, a.limit, t});
    plan.grants.push_back({w, t});
    if (kind == Kind::kSemaphore) {
      used += w->permits;
    } else if (w->mode == Mode::kExclusive) {
      exclusive = true;
    } else {
      ++shared;
    }
  }
}

void LockCore::State::grant_waiter(Waiter& w, Token token) {
  NameNode& node = *w.name;
  const Kind kind = w.kind;
  unlink_waiter(w);
  add_holder(kind, node, w.lease, w.mode, w.permits, token);
  WaiterEvent ev;
  ev.waiter = w.id;
  ev.granted = true;
  ev.grant = Grant{kind, node.first, w.lease->first, w.mode, w.permits, token};
  events.push_back(std::move(ev));
  const WaiterId id = w.id;  // copy: w dies with the node
  waiters.erase(id);
}

void LockCore::State::commit_plan(const Plan& plan) {
  counter = plan.counter;
  reserved = plan.reserved;
  for (const Plan::Grant& g : plan.grants) grant_waiter(*g.waiter, g.token);
}

void LockCore::State::note_store_failure(const Status& st, std::string_view what, TimePoint now) {
  degraded = true;
  retry_at = now + kStoreRetry;
  SD_LOG(kWarn) << "dlock: store write failed (" << what << "), will retry: " << st.to_string();
}

void LockCore::State::pump(Kind kind, NameNode* node, TimePoint at) {
  Plan plan = new_plan();
  plan_grants(kind, *node, nullptr, at, plan);
  if (!plan.grants.empty()) {
    Status st = store.apply(plan.batch);
    if (!st) {
      note_store_failure(st, "grant to waiters", clock.now());
      pending_pumps.emplace(kind, node->first);
      return;
    }
    commit_plan(plan);
  }
  maybe_drop(kind, node);
}

void LockCore::State::retry_pending_pumps(TimePoint now) {
  while (!pending_pumps.empty()) {
    auto [kind, name] = *pending_pumps.begin();
    pending_pumps.erase(pending_pumps.begin());
    auto& m = names_of(kind);
    auto it = m.find(name);
    if (it == m.end()) continue;
    pump(kind, &*it, now);
    if (pending_pumps.count({kind, name})) return;  // still failing; try again later
  }
}

}  // namespace sd::dlock
