#pragma once
// The live seat maps: per event, the open event streams of GET /v1/events/{id}/seats/stream, fed
// by BookingService's SeatListener.
//
// Snapshot first: a subscriber is registered before its snapshot is read, so no change committed
// after the read can be missed; until the snapshot is sent, changes for it are buffered, and when
// it is, the buffered ones newer than the snapshot's version of their seat follow it. Every delta
// carries the seat's version: a client applies a delta only if it is newer than what it has
// (concurrent publishers may deliver two changes of one seat out of order).
//
// Locking: the hub's mutex guards the subscriber lists only and is never held while sending or
// closing; each subscriber has its own mutex, held while sending to it (ordering its snapshot
// against its deltas). An EventStream may run its on_closed handlers inline on the sending
// thread (an overflowing consumer), and the handler takes the hub's mutex: lock order is
// subscriber -> hub, never the reverse.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/net/sse.hpp"
#include "sd/ticketing/model.hpp"

namespace sd::ticketing {

// Create with std::make_shared: streams' on_closed handlers hold it weakly, so a stream that ends
// after the hub is gone does nothing.
class SeatHub : public std::enable_shared_from_this<SeatHub> {
 public:
  class Subscriber;

  // Registers `stream` for `event`'s changes (buffered until ready()); its on_closed unregisters
  // it.
  std::shared_ptr<Subscriber> subscribe(EventId event, std::shared_ptr<net::EventStream> stream);
  // Sends the snapshot (event "snapshot", data snapshot_json), then the buffered changes newer than
  // `seats`' versions; from now on changes are sent as they come. false if the stream is closed.
  bool ready(Subscriber& sub, const std::string& snapshot_json, const std::vector<Seat>& seats);
  void unsubscribe(Subscriber& sub);
  // One "seat" event per change to every subscriber of the event.
  void publish(EventId event, const std::vector<SeatChange>& changes);
  // Closes every stream (their on_closed handlers unregister them).
  void close_all();
  size_t size() const;  // registered subscribers

 private:
  mutable std::mutex mu_;
  std::unordered_map<EventId, std::vector<std::shared_ptr<Subscriber>>> subs_;  // guarded by mu_
  size_t count_ = 0;                                                            // guarded by mu_
};

class SeatHub::Subscriber {
 public:
  Subscriber(EventId event, std::shared_ptr<net::EventStream> stream)
      : event_(event), stream_(std::move(stream)) {}
  EventId event() const { return event_; }
  const std::shared_ptr<net::EventStream>& stream() const { return stream_; }

 private:
  friend class SeatHub;
  const EventId event_;
  const std::shared_ptr<net::EventStream> stream_;
  std::mutex mu_;
  bool ready_ = false;               // guarded by mu_
  std::vector<SeatChange> pending_;  // guarded by mu_: changes before the snapshot went out
  bool registered_ = true;           // guarded by SeatHub::mu_
};

// The open GET /v1/queue/{ticket}/stream responses. The service's queue tick reads each watched
// ticket's status and pushes it (on change, and at least every second); make_shared, as SeatHub.
class QueueHub : public std::enable_shared_from_this<QueueHub> {
 public:
  struct Watch {
    Watch(EventId e, std::string t, std::shared_ptr<net::EventStream> s)
        : event(e), ticket(std::move(t)), stream(std::move(s)) {}
    const EventId event;
    const std::string ticket;
    const std::shared_ptr<net::EventStream> stream;
    std::mutex mu;           // held while sending to stream
    std::string last;        // guarded by mu: the last status data sent
    TimePoint last_sent{};   // guarded by mu
    bool registered = true;  // guarded by QueueHub::mu_
  };

  std::shared_ptr<Watch> subscribe(EventId event, std::string ticket,
                                   std::shared_ptr<net::EventStream> stream);
  void unsubscribe(Watch& w);
  std::vector<std::shared_ptr<Watch>> all() const;
  void close_all();
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Watch>> watches_;  // guarded by mu_
};

}  // namespace sd::ticketing
