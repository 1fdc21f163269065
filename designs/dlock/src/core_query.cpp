// LockCore: read-only views (describe, list, stats).

#include "core_state.hpp"

namespace sd::dlock {

LockInfo LockCore::State::info_of(Kind kind, const NameNode& node, TimePoint now) const {
  LockInfo info;
  info.kind = kind;
  info.name = node.first;
  info.last_token = node.second.last_token;
  const Active* a = node.second.active.get();
  // An idle semaphore has no capacity until someone asks again (reported as 0).
  info.limit = kind == Kind::kLock ? 1 : (a ? a->limit : 0);
  if (!a) return info;
  info.holders.reserve(a->holders.size());
  for (const Holder& h : a->holders) {
    info.holders.push_back(HolderInfo{h.lease->first, h.mode, h.permits, h.token,
                                      ms_until(now, h.lease->second.deadline)});
  }
  info.waiters.reserve(a->queued);
  for (const Waiter* w = a->head; w != nullptr; w = w->next) {
    info.waiters.push_back(
        WaiterInfo{w->lease->first, w->mode, w->permits, ms_until(now, w->deadline)});
  }
  if (a->delay_until != TimePoint{}) info.lock_delay_ms_left = ms_until(now, a->delay_until);
  return info;
}

Result<LockInfo> LockCore::State::describe(Kind kind, const std::string& name) {
  tick();
  SD_RETURN_IF_ERROR(validate_name(name, opt.limits.max_name_bytes));
  const NameMap& m = names_of(kind);
  auto it = m.find(name);
  if (it == m.end()) return not_found(std::string(kind_name(kind)) + " not found");
  return info_of(kind, *it, clock.now());
}

std::vector<LockInfo> LockCore::State::list(Kind kind, const std::string& prefix, size_t limit) {
  tick();
  const TimePoint now = clock.now();
  std::vector<LockInfo> out;
  const NameMap& m = names_of(kind);
  for (auto it = m.lower_bound(prefix); it != m.end() && out.size() < limit; ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(info_of(kind, *it, now));
  }
  return out;
}

CoreStats LockCore::State::stats() const {
  CoreStats s;
  s.leases = leases.size();
  s.holds = hold_count;
  s.waiters = waiters.size();
  s.names = active_names;
  s.next_token = counter + 1;
  return s;
}

}  // namespace sd::dlock
