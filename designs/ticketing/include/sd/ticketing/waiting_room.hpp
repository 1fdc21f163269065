#pragma once
// WaitingRoom: a virtual queue in front of a flash sale. Shoppers join a FIFO queue; at most
// `max_active` of them shop at once, and at most `admit_per_second` (with `admit_burst`) are
// let in per second, so the booking path sees a bounded, smooth load however many arrive. An
// admitted shopper stays active until leave() or until `active_ttl` passes; a waiting shopper who
// stops polling for `abandon_after` is dropped from the queue. Sans-io: time is the injected
// Clock; tick() does the admitting and expiring (the service calls it every ~100 ms). State is in
// memory: a restart empties the room (documented tradeoff). Thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/status.hpp"

namespace sd::ticketing {

struct WaitingRoomOptions {
  size_t max_active = 100;
  double admit_per_second = 10;
  double admit_burst = 10;
  Duration active_ttl{10 * 60 * 1000};
  Duration abandon_after{60'000};
  size_t max_queue = 1'000'000;  // beyond: kResourceExhausted "queue_full"
};

enum class QueueState { kWaiting, kActive, kExpired, kLeft };
std::string_view queue_state_name(QueueState s);  // "waiting" | "active" | "expired" | "left"

struct QueueStatus {
  std::string ticket;  // the shopper's queue ticket (an unguessable id)
  std::string customer;
  QueueState state = QueueState::kWaiting;
  uint64_t position = 0;       // 1-based place among the waiting; 0 unless waiting
  int64_t eta_ms = 0;          // estimated wait until admission; 0 unless waiting
  int64_t active_left_ms = 0;  // time left to shop; 0 unless active
};

struct WaitingRoomStats {
  size_t waiting = 0, active = 0;
  uint64_t joined = 0, admitted = 0, expired = 0, abandoned = 0, left = 0;
};

class WaitingRoom {
 public:
  WaitingRoom(const Clock& clock, IdGenerator& ids, WaitingRoomOptions options = {});
  ~WaitingRoom();
  WaitingRoom(const WaitingRoom&) = delete;
  WaitingRoom& operator=(const WaitingRoom&) = delete;

  // Joins the queue; a customer already waiting or active gets their existing ticket back.
  Result<QueueStatus> join(const std::string& customer);
  // Status of a ticket; counts as a poll (keeps a waiting ticket from being abandoned). kNotFound
  // for unknown tickets (and for expired/left ones after they are forgotten).
  Result<QueueStatus> status(const std::string& ticket);
  // True if the ticket is active now and belongs to customer (the hold path's admission check).
  bool is_active(const std::string& ticket, const std::string& customer) const;
  Status leave(const std::string& ticket);  // frees an active slot or leaves the queue
  // Admits from the head of the queue as capacity and rate allow; expires active shoppers past
  // active_ttl and drops abandoned waiters. Returns the tickets admitted by this call.
  std::vector<std::string> tick();
  WaitingRoomStats stats() const;
  const WaitingRoomOptions& options() const { return options_; }

 private:
  struct State;
  const Clock& clock_;
  IdGenerator& ids_;
  WaitingRoomOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<State> state_;  // guarded by mu_
};

}  // namespace sd::ticketing
