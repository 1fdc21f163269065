// WaitingRoom: FIFO virtual queue with capacity- and rate-limited admission.
//
// Data structures (all under WaitingRoom::mu_), chosen so every call is O(log n) or amortized
// O(1) even with a million waiters:
//   - entries: ticket -> Entry (unordered_map; node addresses are stable, so the structures below
//     hold Entry pointers); live_by_customer: customer -> its waiting/active Entry (join is
//     idempotent per customer).
//   - the queue: every join takes the next sequence number; a window of slots indexed by
//     seq - base holds the waiting entries (a departed waiter's slot becomes null), and a Fenwick
//     tree over the window counts the waiting entries, so a waiter's 1-based position is the
//     prefix count up to its slot (O(log n)); leaving from the middle is O(log n). The head
//     pointer skips null slots (amortized O(1)). When the window fills up it is compacted to
//     start at the head and resized to twice the live span (amortized O(1) per join).
//   - by_poll: waiting entries in order of their last poll (a poll moves the entry to the back),
//     so tick() drops abandoned waiters from the front without scanning the queue.
//   - active: active entries in admission order; every entry gets the same TTL, so this is also
//     deadline order and tick() expires from the front.
//   - finished: expired/left entries stay readable by status() for `abandon_after` (a client that
//     polls at least that often sees its final state), then they are forgotten (kNotFound).
// Admission: a token bucket of `admit_burst` tokens (at least 1) refilled at `admit_per_second`
// on the injected clock (written here rather than reusing sd::ratelimit's integer Limit, since
// these rates are fractional); tick() admits from the head while a token and an active slot are
// free. Housekeeping (expiry, abandonment, forgetting) runs at the start of every mutating call,
// so status() never reports a state that tick() would already have changed; is_active() also
// checks the deadline itself.
//
// ETA: position p among the waiting, F free active slots, r = admit_per_second. The first F
// waiters are admitted at rate r; after that the room is full and a waiter gets in only when an
// active shopper leaves, so the rate is min(r, exit rate). The exit rate is measured over the
// last 60 s (active shoppers who left or expired), floored at max_active / active_ttl — in steady
// state every shopper is gone within the TTL, so the room turns over at least that fast. Hence
//   eta = p / r                               if p <= F
//   eta = F / r + (p - F) / min(r, exit)      otherwise,
// monotone in p, an upper bound in steady state when shoppers use their whole TTL, and shorter as
// they leave early. It ignores tokens already in the bucket (at most one tick of error).

#include "sd/ticketing/waiting_room.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <list>
#include <unordered_map>
#include <utility>

namespace sd::ticketing {
namespace {

constexpr Duration kExitWindow{60'000};
constexpr int64_t kMaxEtaMs = 7LL * 24 * 3600 * 1000;
constexpr size_t kMinWindow = 1024;
constexpr double kTokenEpsilon = 1e-9;

double seconds(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e9;
}

size_t lowbit(size_t i) {
  return i & (~i + 1);
}

}  // namespace

std::string_view queue_state_name(QueueState s) {
  switch (s) {
    case QueueState::kWaiting:
      return "waiting";
    case QueueState::kActive:
      return "active";
    case QueueState::kExpired:
      return "expired";
    case QueueState::kLeft:
      return "left";
  }
  return "unknown";
}

struct WaitingRoom::State {
  struct Entry {
    const std::string* ticket = nullptr;  // the key of this entry's node in `entries`
    std::string customer;
    QueueState state = QueueState::kWaiting;
    uint64_t seq = 0;
    TimePoint last_poll{};
    TimePoint active_until{};
    std::list<Entry*>::iterator link;  // in by_poll (waiting) or active (active)
  };

  explicit State(const WaitingRoomOptions& options) : o(options) {}

  const WaitingRoomOptions& o;
  TimePoint now{};  // the clock reading of the call in progress (set under mu_)

  std::unordered_map<std::string, Entry> entries;
  std::unordered_map<std::string, Entry*> live_by_customer;

  // The FIFO: seqs [base, next) map to window[seq - base]; head is the first waiting seq (or
  // next when nobody waits); tree is a Fenwick tree (1-based) of 0/1 "waiting" flags.
  uint64_t base = 0, head = 0, next = 0;
  std::vector<Entry*> window;
  std::vector<int32_t> tree;
  size_t waiting = 0;

  std::list<Entry*> by_poll;
  std::list<Entry*> active;
  std::deque<std::pair<TimePoint, const std::string*>> finished;  // (forget at, ticket)
  std::deque<TimePoint> exits;  // active shoppers' exits, last 60 s

  double tokens = 0;
  TimePoint refilled{};
  TimePoint created{};
  WaitingRoomStats counters;

  // --- the queue ---
  void fenwick_add(size_t i, int32_t delta) {
    for (; i < tree.size(); i += lowbit(i)) tree[i] += delta;
  }
  uint64_t fenwick_prefix(size_t i) const {
    int64_t sum = 0;
    for (; i > 0; i -= lowbit(i)) sum += tree[i];
    return static_cast<uint64_t>(sum);
  }

  // Moves the window to start at head with room for as many again (amortized O(1) per join).
  void compact() {
    const auto live = static_cast<size_t>(next - head);
    const size_t cap = std::max(kMinWindow, std::bit_ceil(2 * live + 1));
    std::vector<Entry*> w(cap, nullptr);
    for (size_t k = 0; k < live; ++k) w[k] = window[static_cast<size_t>(head - base) + k];
    window = std::move(w);
    base = head;
    tree.assign(cap + 1, 0);
    for (size_t i = 1; i <= cap; ++i) {  // linear-time Fenwick build
      if (window[i - 1] != nullptr) tree[i] += 1;
      const size_t j = i + lowbit(i);
      if (j <= cap) tree[j] += tree[i];
    }
  }

  void push(Entry& e) {
    if (next - base == window.size()) compact();
    e.seq = next++;
    const auto idx = static_cast<size_t>(e.seq - base);
    window[idx] = &e;
    fenwick_add(idx + 1, 1);
    ++waiting;
  }

  void remove(Entry& e) {
    const auto idx = static_cast<size_t>(e.seq - base);
    window[idx] = nullptr;
    fenwick_add(idx + 1, -1);
    --waiting;
    while (head < next && window[static_cast<size_t>(head - base)] == nullptr) ++head;
  }

  Entry* front() const { return head < next ? window[static_cast<size_t>(head - base)] : nullptr; }

  uint64_t position(const Entry& e) const {
    return fenwick_prefix(static_cast<size_t>(e.seq - base) + 1);
  }

  // --- lifecycle ---
  void finish(Entry& e, QueueState final_state) {
    e.state = final_state;
    auto it = live_by_customer.find(e.customer);
    if (it != live_by_customer.end() && it->second == &e) live_by_customer.erase(it);
    finished.emplace_back(now + o.abandon_after, e.ticket);
  }

  // Expires active shoppers past their TTL, drops abandoned waiters, forgets old finished
  // tickets. Amortized O(1): each entry is handled once.
  void housekeeping() {
    while (!active.empty() && active.front()->active_until <= now) {
      Entry& e = *active.front();
      active.pop_front();
      ++counters.expired;
      exits.push_back(now);
      finish(e, QueueState::kExpired);
    }
    while (!by_poll.empty() && by_poll.front()->last_poll + o.abandon_after <= now) {
      Entry& e = *by_poll.front();
      by_poll.pop_front();
      remove(e);
      ++counters.abandoned;
      finish(e, QueueState::kExpired);
    }
    while (!finished.empty() && finished.front().first <= now) {
      auto it = entries.find(*finished.front().second);
      finished.pop_front();
      if (it != entries.end()) entries.erase(it);
    }
    while (!exits.empty() && exits.front() + kExitWindow <= now) exits.pop_front();
  }

  void poll(Entry& e) {
    if (e.state != QueueState::kWaiting) return;
    e.last_poll = now;
    by_poll.splice(by_poll.end(), by_poll, e.link);
  }

  // --- admission ---
  void refill() {
    if (now <= refilled) return;
    const double cap = std::max(1.0, o.admit_burst);
    const double rate = std::max(0.0, o.admit_per_second);
    tokens = std::min(cap, tokens + seconds(now - refilled) * rate);
    refilled = now;
  }

  int64_t eta_ms(uint64_t pos) const {
    const double rate = o.admit_per_second;
    if (rate <= 0) return kMaxEtaMs;
    const size_t busy = active.size();
    const double free_slots = static_cast<double>(busy < o.max_active ? o.max_active - busy : 0);
    const double window_s = std::clamp(seconds(now - created), 1.0, seconds(kExitWindow));
    double exit_rate = static_cast<double>(exits.size()) / window_s;
    if (o.active_ttl.count() > 0) {
      exit_rate = std::max(exit_rate, static_cast<double>(o.max_active) / seconds(o.active_ttl));
    }
    const double slow = std::min(rate, exit_rate);
    const auto p = static_cast<double>(pos);
    double eta_s = 0;
    if (p <= free_slots) {
      eta_s = p / rate;
    } else {
      if (slow <= 0) return kMaxEtaMs;
      eta_s = free_slots / rate + (p - free_slots) / slow;
    }
    // Rounded up to the millisecond; the tolerance keeps 6.000000000000001 s at 6000 ms.
    const double ms = std::ceil(eta_s * 1000.0 - 1e-6);
    return ms >= static_cast<double>(kMaxEtaMs) ? kMaxEtaMs : static_cast<int64_t>(ms);
  }

  QueueStatus describe(const Entry& e) const {
    QueueStatus st;
    st.ticket = *e.ticket;
    st.customer = e.customer;
    st.state = e.state;
    if (e.state == QueueState::kWaiting) {
      st.position = position(e);
      st.eta_ms = eta_ms(st.position);
    } else if (e.state == QueueState::kActive) {
      st.active_left_ms = ms_until(now, e.active_until);
    }
    return st;
  }
};

WaitingRoom::WaitingRoom(const Clock& clock, IdGenerator& ids, WaitingRoomOptions options)
    : clock_(clock), ids_(ids), options_(options), state_(std::make_unique<State>(options_)) {
  const TimePoint now = clock_.now();
  state_->tokens = std::max(1.0, options_.admit_burst);
  state_->refilled = now;
  state_->created = now;
}

WaitingRoom::~WaitingRoom() = default;

Result<QueueStatus> WaitingRoom::join(const std::string& customer) {
  if (customer.empty()) return invalid_argument("invalid_customer: customer is required");
  std::lock_guard lock(mu_);
  State& s = *state_;
  s.now = clock_.now();
  s.housekeeping();
  if (auto it = s.live_by_customer.find(customer); it != s.live_by_customer.end()) {
    s.poll(*it->second);
    return s.describe(*it->second);
  }
  if (s.waiting >= options_.max_queue) {
    return resource_exhausted("queue_full: the waiting room is full (" +
                              std::to_string(options_.max_queue) + " waiting); try again later");
  }
  std::string ticket;
  do {
    ticket = "q_" + ids_.next();
  } while (s.entries.count(ticket) != 0);
  auto it = s.entries.try_emplace(std::move(ticket)).first;
  State::Entry& e = it->second;
  e.ticket = &it->first;
  e.customer = customer;
  e.state = QueueState::kWaiting;
  e.last_poll = s.now;
  s.push(e);
  e.link = s.by_poll.insert(s.by_poll.end(), &e);
  s.live_by_customer[customer] = &e;
  ++s.counters.joined;
  return s.describe(e);
}

Result<QueueStatus> WaitingRoom::status(const std::string& ticket) {
  std::lock_guard lock(mu_);
  State& s = *state_;
  s.now = clock_.now();
  s.housekeeping();
  auto it = s.entries.find(ticket);
  if (it == s.entries.end()) return not_found("not_found: unknown queue ticket");
  s.poll(it->second);
  return s.describe(it->second);
}

bool WaitingRoom::is_active(const std::string& ticket, const std::string& customer) const {
  std::lock_guard lock(mu_);
  auto it = state_->entries.find(ticket);
  if (it == state_->entries.end()) return false;
  const State::Entry& e = it->second;
  return e.state == QueueState::kActive && e.customer == customer && clock_.now() < e.active_until;
}

Status WaitingRoom::leave(const std::string& ticket) {
  std::lock_guard lock(mu_);
  State& s = *state_;
  s.now = clock_.now();
  s.housekeeping();
  auto it = s.entries.find(ticket);
  if (it == s.entries.end()) return not_found("not_found: unknown queue ticket");
  State::Entry& e = it->second;
  if (e.state == QueueState::kWaiting) {
    s.by_poll.erase(e.link);
    s.remove(e);
  } else if (e.state == QueueState::kActive) {
    s.active.erase(e.link);
    s.exits.push_back(s.now);
  } else {
    return Status::ok();  // already expired or left
  }
  ++s.counters.left;
  s.finish(e, QueueState::kLeft);
  return Status::ok();
}

std::vector<std::string> WaitingRoom::tick() {
  std::lock_guard lock(mu_);
  State& s = *state_;
  s.now = clock_.now();
  s.housekeeping();
  s.refill();
  std::vector<std::string> admitted;
  // kTokenEpsilon: refills are sums of floating-point fractions; a bucket that should hold exactly
  // one token must not read as 0.9999999.
  while (s.tokens + kTokenEpsilon >= 1.0 && s.active.size() < options_.max_active) {
    State::Entry* e = s.front();
    if (e == nullptr) break;
    s.tokens = std::max(0.0, s.tokens - 1.0);
    s.by_poll.erase(e->link);
    s.remove(*e);
    e->state = QueueState::kActive;
    e->active_until = s.now + options_.active_ttl;
    e->link = s.active.insert(s.active.end(), e);
    ++s.counters.admitted;
    admitted.push_back(*e->ticket);
  }
  return admitted;
}

WaitingRoomStats WaitingRoom::stats() const {
  std::lock_guard lock(mu_);
  WaitingRoomStats st = state_->counters;
  st.waiting = state_->waiting;
  st.active = state_->active.size();
  return st;
}

}  // namespace sd::ticketing
