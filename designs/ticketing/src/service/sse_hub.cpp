// SeatHub: see sse_hub.hpp.
#include "sse_hub.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "service_json.hpp"

namespace sd::ticketing {

std::shared_ptr<SeatHub::Subscriber> SeatHub::subscribe(EventId event,
                                                        std::shared_ptr<net::EventStream> stream) {
  auto sub = std::make_shared<Subscriber>(event, std::move(stream));
  {
    std::lock_guard lock(mu_);
    subs_[event].push_back(sub);
    ++count_;
  }
  // Registered after the insert: a stream that is already closed unregisters at once.
  sub->stream_->on_closed([hub = weak_from_this(), weak = std::weak_ptr<Subscriber>(sub)] {
    auto h = hub.lock();
    auto s = weak.lock();
    if (h && s) h->unsubscribe(*s);
  });
  return sub;
}

bool SeatHub::ready(Subscriber& sub, const std::string& snapshot_json,
                    const std::vector<Seat>& seats) {
  std::lock_guard lock(sub.mu_);
  if (!sub.stream_->send("snapshot", snapshot_json)) return false;
  if (!sub.pending_.empty()) {
    std::unordered_map<SeatId, int64_t> known;
    known.reserve(seats.size());
    for (const Seat& s : seats) known[s.id] = s.version;
    for (const SeatChange& c : sub.pending_) {
      auto it = known.find(c.seat);
      if (it != known.end() && c.version <= it->second) continue;  // in the snapshot already
      if (!sub.stream_->send("seat", service_detail::seat_change_json(c).dump())) return false;
    }
    sub.pending_.clear();
    sub.pending_.shrink_to_fit();
  }
  sub.ready_ = true;
  return true;
}

void SeatHub::unsubscribe(Subscriber& sub) {
  std::lock_guard lock(mu_);
  if (!sub.registered_) return;
  sub.registered_ = false;
  auto it = subs_.find(sub.event_);
  if (it == subs_.end()) return;
  auto& list = it->second;
  list.erase(
      std::remove_if(list.begin(), list.end(),
                     [&sub](const std::shared_ptr<Subscriber>& s) { return s.get() == &sub; }),
      list.end());
  if (list.empty()) subs_.erase(it);
  --count_;
}

void SeatHub::publish(EventId event, const std::vector<SeatChange>& changes) {
  if (changes.empty()) return;
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = subs_.find(event);
    if (it == subs_.end()) return;
    targets = it->second;
  }
  std::vector<std::string> wire;  // the same data for every subscriber
  wire.reserve(changes.size());
  for (const SeatChange& c : changes) wire.push_back(service_detail::seat_change_json(c).dump());
  for (const auto& sub : targets) {
    std::lock_guard lock(sub->mu_);
    if (!sub->ready_) {
      sub->pending_.insert(sub->pending_.end(), changes.begin(), changes.end());
      continue;
    }
    for (const std::string& data : wire) {
      if (!sub->stream_->send("seat", data)) break;  // closed: its on_closed unregisters it
    }
  }
}

void SeatHub::close_all() {
  std::vector<std::shared_ptr<Subscriber>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [event, list] : subs_) all.insert(all.end(), list.begin(), list.end());
  }
  for (const auto& sub : all) sub->stream_->close();
}

size_t SeatHub::size() const {
  std::lock_guard lock(mu_);
  return count_;
}

std::shared_ptr<QueueHub::Watch> QueueHub::subscribe(EventId event, std::string ticket,
                                                     std::shared_ptr<net::EventStream> stream) {
  auto w = std::make_shared<Watch>(event, std::move(ticket), std::move(stream));
  {
    std::lock_guard lock(mu_);
    watches_.push_back(w);
  }
  w->stream->on_closed([hub = weak_from_this(), weak = std::weak_ptr<Watch>(w)] {
    auto h = hub.lock();
    auto s = weak.lock();
    if (h && s) h->unsubscribe(*s);
  });
  return w;
}

void QueueHub::unsubscribe(Watch& w) {
  std::lock_guard lock(mu_);
  if (!w.registered) return;
  w.registered = false;
  watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                [&w](const std::shared_ptr<Watch>& x) { return x.get() == &w; }),
                 watches_.end());
}

std::vector<std::shared_ptr<QueueHub::Watch>> QueueHub::all() const {
  std::lock_guard lock(mu_);
  return watches_;
}

void QueueHub::close_all() {
  for (const auto& w : all()) w->stream->close();
}

size_t QueueHub::size() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

}  // namespace sd::ticketing
