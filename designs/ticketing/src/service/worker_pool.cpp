// WorkerPool: see worker_pool.hpp.
#include "worker_pool.hpp"

#include <exception>
#include <utility>

#include "sd/base/log.hpp"

namespace sd::ticketing {

WorkerPool::WorkerPool(size_t threads) : size_(threads == 0 ? 1 : threads) {
  threads_.reserve(size_);
  for (size_t i = 0; i < size_; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
  stop();
}

bool WorkerPool::submit(std::function<void()> fn) {
  size_t queued = 0, busy = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(fn));
    queued = queue_.size();
    busy = busy_;
  }
  cv_.notify_one();
  if (observer_) observer_(queued, busy);
  return true;
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mu_);
  threads_.clear();
}

size_t WorkerPool::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t WorkerPool::busy() const {
  std::lock_guard lock(mu_);
  return busy_;
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    try {
      fn();
    } catch (const std::exception& e) {
      SD_LOG(kError) << "ticketing: worker task threw: " << e.what();
    } catch (...) {
      SD_LOG(kError) << "ticketing: worker task threw";
    }
    fn = nullptr;  // destroy captures (e.g. a Responder) before counting the task done
    size_t queued = 0, busy = 0;
    {
      std::lock_guard lock(mu_);
      --busy_;
      queued = queue_.size();
      busy = busy_;
    }
    if (observer_) observer_(queued, busy);
  }
}

}  // namespace sd::ticketing
