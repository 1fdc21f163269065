#pragma once
// WorkerPool: a fixed set of threads running blocking work (booking calls: SQLite writes, payment
// provider latency, lock waits) off the HTTP server's I/O threads. FIFO, unbounded queue: the
// waiting room, not this queue, is what bounds the load of a flash sale; queue_depth() is exported
// as a metric so a backlog is visible.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sd::ticketing {

class WorkerPool {
 public:
  // Starts `threads` (>= 1) workers at once.
  explicit WorkerPool(size_t threads);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues fn; false (fn dropped, not run) once stop() was called. An exception escaping fn is
  // logged and swallowed.
  bool submit(std::function<void()> fn);
  // Stops accepting work, runs what is already queued, joins the workers. Idempotent; must not be
  // called from a worker.
  void stop();

  // Called with the queue depth and the busy count after every submit and every finished task
  // (ticketd feeds gauges with it); outside the pool's lock, must not block. Set before use.
  void set_observer(std::function<void(size_t queued, size_t busy)> fn) {
    observer_ = std::move(fn);
  }

  size_t size() const { return size_; }
  size_t queue_depth() const;  // queued, not yet started
  size_t busy() const;         // running now

 private:
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  size_t busy_ = 0;                          // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  const size_t size_;
  std::function<void(size_t, size_t)> observer_;  // set before use
  std::vector<std::thread> threads_;
};

}  // namespace sd::ticketing
