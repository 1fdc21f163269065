// Hot reload: RulesSource (the current RuleSet behind a mutex) and RulesWatcher (poll thread that
// compares file stamps, plus an optional SIGHUP thread).

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include "rules_parse.hpp"
#include "sd/ratelimit/rules_watch.hpp"

namespace sd::ratelimit {

RulesSource::RulesSource(std::shared_ptr<const RuleSet> initial) : rules_(std::move(initial)) {}

std::shared_ptr<const RuleSet> RulesSource::current() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rules_;
}

void RulesSource::set(std::shared_ptr<const RuleSet> rules) {
  std::shared_ptr<const RuleSet> old;  // released outside the lock: freeing a tree takes time
  std::lock_guard<std::mutex> lk(mu_);
  old = std::exchange(rules_, std::move(rules));
  ++version_;
}

uint64_t RulesSource::version() const {
  std::lock_guard<std::mutex> lk(mu_);
  return version_;
}

RulesWatcher::RulesWatcher(std::string path, RulesSource& source, Duration poll_interval,
                           std::function<void(const Status&)> on_reload)
    : path_(std::move(path)),
      source_(source),
      poll_interval_(poll_interval),
      on_reload_(std::move(on_reload)) {}

RulesWatcher::~RulesWatcher() {
  stop();
}

namespace {

sigset_t sighup_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

std::vector<RulesWatcher::FileStamp> RulesWatcher::stamp() const {
  auto one = [](const std::string& p) {
    FileStamp s;
    s.path = p;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
      s.size = static_cast<int64_t>(st.st_size);
      s.inode = static_cast<uint64_t>(st.st_ino);
    }
    return s;
  };
  std::vector<FileStamp> out;
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    for (const auto& f : detail::list_rules_files(path_)) out.push_back(one(f));
  } else {
    out.push_back(one(path_));
  }
  return out;
}

Status RulesWatcher::reload() {
  Status status;
  {
    std::lock_guard<std::mutex> lk(reload_mu_);
    // Stamp before loading: a change racing with the load shows up as a difference next poll.
    last_stamp_ = stamp();
    have_stamp_ = true;
    auto rules = RuleSet::load(path_);
    if (rules) {
      source_.set(std::move(rules).value());
    } else {
      status = rules.status();
    }
  }
  if (on_reload_) on_reload_(status);
  return status;
}

void RulesWatcher::start() {
  if (poll_thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(reload_mu_);
    if (!have_stamp_) {  // baseline: the files as they are now (the caller loaded them)
      last_stamp_ = stamp();
      have_stamp_ = true;
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = false;
  }
  poll_thread_ = std::thread([this] { poll_loop(); });
}

void RulesWatcher::poll_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!cv_.wait_for(lk, poll_interval_, [this] { return stopping_; })) {
    lk.unlock();
    const auto now = stamp();
    bool changed = false;
    {
      std::lock_guard<std::mutex> rl(reload_mu_);
      changed = now != last_stamp_;
    }
    if (changed) (void)reload();  // outcome goes to on_reload
    lk.lock();
  }
}

void RulesWatcher::reload_on_sighup() {
  const sigset_t set = sighup_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (sighup_thread_.joinable()) return;
  sighup_stopping_ = false;
  sighup_thread_ = std::thread([this] { sighup_loop(); });
}

void RulesWatcher::sighup_loop() {
  const sigset_t set = sighup_set();
  for (;;) {
    int sig = 0;
    const int rc = sigwait(&set, &sig);
    if (sighup_stopping_) return;  // stop() woke us with a thread-directed SIGHUP
    if (rc == 0 && sig == SIGHUP) (void)reload();
  }
}

void RulesWatcher::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (poll_thread_.joinable()) poll_thread_.join();
  if (sighup_thread_.joinable()) {
    sighup_stopping_ = true;
    // SIGHUP is blocked in that thread, so this stays pending until its sigwait() takes it.
    pthread_kill(sighup_thread_.native_handle(), SIGHUP);
    sighup_thread_.join();
  }
}

}  // namespace sd::ratelimit
