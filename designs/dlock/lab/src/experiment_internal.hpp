#pragma once
// Internals of run_experiment: the Runner owns every process of one experiment. Everything runs on
// the calling (main) thread: the child processes' PR_SET_PDEATHSIG is bound to it, and faults are
// applied from its loop in schedule order.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "backends.hpp"
#include "sd/dlock/lab/experiment.hpp"

namespace sd::dlock::lab {

struct Paths {
  std::string dir;
};

struct RunnerBinaries {
  std::string resource, client, dlockd, clockshift;
};

// Reads the complete lines appended to a file since the last poll.
class FileTail {
 public:
  explicit FileTail(std::string path) : path_(std::move(path)) {}
  void poll(const std::function<void(const Event&)>& on_event);

 private:
  std::string path_;
  long offset_ = 0;
  std::string partial_;
};

class Runner {
 public:
  Runner(const ExperimentOptions& o, Paths paths, RunnerBinaries bins, std::ostream& out,
         std::ostream& err);
  ~Runner();
  int start(bool has_clock, bool has_partition);      // kLabOk or kLabCannotStart
  int run(const std::function<bool()>& interrupted);  // the fault schedule + progress
  void stop();   // ends the faults, stops clients, resource and servers (idempotent)
  int report();  // merge, check, write files, print; kLabOk or kLabViolation

 private:
  struct Active {
    FaultKind kind;
    size_t index;  // client or server
    std::string target, end_f;
    int64_t end_ns;
  };
  std::string raw(const std::string& name) const;
  std::string log(const std::string& name) const;
  void poll_progress();
  void print_progress(int64_t now_ns);
  void begin_fault(const PlannedFault& f, int64_t now_ns);
  void end_fault(const Active& a);
  std::optional<size_t> pick_client(size_t scheduled, int64_t now_ns);
  void note(const std::string& f, const std::string& target, std::optional<int64_t> value,
            const std::string& detail, int64_t time_ns);

  const ExperimentOptions& o_;
  Paths paths_;
  RunnerBinaries bins_;
  std::ostream& out_;
  std::ostream& err_;
  Rng rng_;
  std::unique_ptr<HistoryWriter> nemesis_;
  std::optional<sd::testing::Process> resource_;
  uint16_t resource_port_ = 0;
  std::unique_ptr<LabBackend> backend_;
  std::vector<sd::testing::Process> clients_;
  std::vector<FileTail> tails_;
  Progress progress_;
  std::vector<int64_t> busy_until_ns_;  // per client: paused or partitioned until
  std::vector<Active> active_;
  std::map<size_t, bool> warned_dead_;  // server -> "exited on its own" already reported
  size_t faults_started_ = 0;
  int64_t t0_ns_ = 0;
  bool stopped_ = false;
};

}  // namespace sd::dlock::lab
