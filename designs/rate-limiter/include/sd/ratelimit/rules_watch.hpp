#pragma once
// Hot reload of rules: a RulesSource hands out the current RuleSet (requests in flight keep the one
// they started with); a RulesWatcher reloads it when the files change or on demand (SIGHUP). A
// reload that fails validation keeps the old rules and reports the error.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/status.hpp"
#include "sd/ratelimit/rules.hpp"

namespace sd::ratelimit {

// Thread-safe holder of the current rules.
class RulesSource {
 public:
  explicit RulesSource(std::shared_ptr<const RuleSet> initial);
  std::shared_ptr<const RuleSet> current() const;
  void set(std::shared_ptr<const RuleSet> rules);  // bumps version()
  uint64_t version() const;                        // 1 for the initial rules

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RuleSet> rules_;  // guarded by mu_
  uint64_t version_ = 1;                  // guarded by mu_
};

// Reloads `path` (file or directory, as RuleSet::load) into `source`.
class RulesWatcher {
 public:
  // on_reload is called after every reload attempt with its outcome (from the watcher thread or
  // the caller of reload()); use it for logs and metrics. It must not call reload() itself.
  RulesWatcher(std::string path, RulesSource& source, Duration poll_interval,
               std::function<void(const Status&)> on_reload = {});
  ~RulesWatcher();  // stop()
  // Loads now; on success swaps the rules in. Thread-safe (a SIGHUP thread may call it).
  Status reload();
  // Starts a thread that checks every poll_interval whether any rules file (or the directory's
  // list of files) changed — mtime, size, inode, so editors that write a new file and rename it
  // are seen — and reloads when it did.
  void start();
  void stop();  // idempotent

  // Waits for SIGHUP on a thread of its own and calls reload() for each. Call before any other
  // thread is started (it blocks SIGHUP in the calling thread, and threads inherit the mask; a
  // thread with SIGHUP unblocked would take the signal's default action: exit). One watcher per
  // process. Idempotent; the thread ends in stop() / the destructor. SIGHUP stays blocked.
  void reload_on_sighup();

 private:
  // What a poll compares: every rules file's identity and content stamp (a directory: its list).
  struct FileStamp {
    std::string path;
    int64_t mtime_ns = 0;
    int64_t size = -1;  // -1: missing / unreadable
    uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  std::vector<FileStamp> stamp() const;
  void poll_loop();
  void sighup_loop();

  const std::string path_;
  RulesSource& source_;
  const Duration poll_interval_;
  const std::function<void(const Status&)> on_reload_;

  std::mutex reload_mu_;               // serializes reloads so an older load never wins
  std::vector<FileStamp> last_stamp_;  // guarded by reload_mu_; what the last reload saw
  bool have_stamp_ = false;            // guarded by reload_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread poll_thread_;
  std::thread sighup_thread_;
  std::atomic<bool> sighup_stopping_{false};
};

}  // namespace sd::ratelimit
