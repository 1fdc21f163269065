// The experiment's main loop (faults on schedule, progress), shutdown, and the final report.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "experiment_internal.hpp"
#include "sd/dlock/lab/checker.hpp"
#include "sd/dlock/lab/timeline.hpp"

namespace sd::dlock::lab {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

void FileTail::poll(const std::function<void(const Event&)>& on_event) {
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  if (f == nullptr) return;  // not created yet
  if (std::fseek(f, offset_, SEEK_SET) == 0) {
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
      offset_ += static_cast<long>(n);
      partial_.append(buf, n);
    }
  }
  std::fclose(f);
  size_t start = 0, nl;
  while ((nl = partial_.find('\n', start)) != std::string::npos) {
    auto e = parse_event(std::string_view(partial_).substr(start, nl - start));
    if (e.is_ok()) on_event(*e);
    start = nl + 1;
  }
  partial_.erase(0, start);
}

void Runner::note(const std::string& f, const std::string& target, std::optional<int64_t> value,
                  const std::string& detail, int64_t time_ns) {
  Status s = nemesis_->append(nemesis_event(f, target, value, detail, time_ns));
  if (!s.is_ok()) err_ << "dlock lab: " << s.to_string() << "\n";
}

void Runner::poll_progress() {
  for (auto& t : tails_) t.poll([this](const Event& e) { update_progress(progress_, e); });
}

void Runner::print_progress(int64_t now_ns) {
  char line[200];
  std::snprintf(line, sizeof line,
                "[%5.1fs] cycles %zu  writes %zu accepted / %zu rejected  faults %zu",
                static_cast<double>(now_ns - t0_ns_) / 1e9, progress_.cycles,
                progress_.writes_accepted, progress_.writes_rejected, faults_started_);
  out_ << line;
  if (!active_.empty()) {
    out_ << " (now:";
    for (const auto& a : active_) out_ << " " << fault_kind_name(a.kind) << " " << a.target;
    out_ << ")";
  }
  out_ << std::endl;
  // A server that died without the nemesis (a bug, a bad port) would make the run meaningless.
  for (size_t i = 0; i < backend_->servers(); ++i) {
    bool killed = std::any_of(active_.begin(), active_.end(), [&](const Active& a) {
      return (a.kind == FaultKind::kCrash || a.kind == FaultKind::kLeader) && a.index == i;
    });
    if (!killed && !backend_->running(i) && !warned_dead_[i]) {
      warned_dead_[i] = true;
      err_ << "dlock lab: warning: " << backend_->server_name(i)
           << " exited on its own; see its log under " << paths_.dir << "/servers\n";
    }
  }
}

// The client to pause or cut off: one inside its critical section if targeting, else the scheduled
// one; never one that is already paused or partitioned.
std::optional<size_t> Runner::pick_client(size_t scheduled, int64_t now_ns) {
  auto free = [&](size_t c) { return busy_until_ns_[c] <= now_ns; };
  if (o_.target_holder) {
    std::vector<size_t> holders;
    for (size_t c = 0; c < clients_.size(); ++c) {
      auto it = progress_.in_section.find("c" + std::to_string(c));
      if (it != progress_.in_section.end() && it->second && free(c)) holders.push_back(c);
    }
    if (!holders.empty()) return holders[rng_.index(holders.size())];
  }
  if (scheduled < clients_.size() && free(scheduled)) return scheduled;
  return std::nullopt;
}

void Runner::begin_fault(const PlannedFault& f, int64_t now_ns) {
  const int64_t dur_ns = f.duration_ms * 1'000'000;
  const std::string ms = std::to_string(f.duration_ms) + " ms";
  switch (f.kind) {
    case FaultKind::kPause:
    case FaultKind::kPartition: {
      poll_progress();  // who is in a critical section right now
      auto c = pick_client(f.target, now_ns);
      if (!c) return;
      const std::string name = "c" + std::to_string(*c);
      int64_t t = monotonic_ns();
      if (f.kind == FaultKind::kPause) {
        (void)clients_[*c].signal(SIGSTOP);
        note("pause", name, f.duration_ms, "SIGSTOP for " + ms, t);
        active_.push_back({f.kind, *c, name, "resume", t + dur_ns});
      } else {
        (void)backend_->partition(*c, true);
        note("partition", name, f.duration_ms,
             "all of " + name + "'s connections blackholed for " + ms, t);
        active_.push_back({f.kind, *c, name, "heal", t + dur_ns});
      }
      busy_until_ns_[*c] = t + dur_ns;
      break;
    }
    case FaultKind::kCrash:
    case FaultKind::kLeader: {
      std::vector<size_t> victims;
      std::string detail = "SIGKILL; restart after " + ms;
      if (f.kind == FaultKind::kLeader) {
        auto l = backend_->leader();
        if (!l.is_ok()) {
          err_ << "dlock lab: no etcd leader to kill: " << l.status().to_string() << "\n";
          return;
        }
        victims.push_back(*l);
        detail = "SIGKILL the leader; restart after " + ms;
      } else {
        for (size_t k = 0; k < f.count; ++k)
          victims.push_back((f.target + k) % backend_->servers());
        if (victims.size() > 1)
          detail += " (" + std::to_string(victims.size()) + " servers at once)";
      }
      if (o_.backend == BackendKind::kRedis || o_.backend == BackendKind::kRedlock) {
        detail +=
            o_.redis_persistence ? " (AOF: keeps its keys)" : " (no persistence: comes back empty)";
      }
      bool any = false;
      for (size_t i : victims) {
        if (!backend_->running(i)) continue;
        int64_t t = monotonic_ns();
        Status s = backend_->kill(i);
        if (!s.is_ok()) {
          err_ << "dlock lab: kill " << backend_->server_name(i) << ": " << s.to_string() << "\n";
        }
        note("kill", backend_->server_name(i), f.duration_ms, detail, t);
        active_.push_back({f.kind, i, backend_->server_name(i), "restart", t + dur_ns});
        any = true;
      }
      if (!any) return;
      break;
    }
    case FaultKind::kClock: {
      int64_t t = monotonic_ns();
      Status s = backend_->clock_jump(f.target, dur_ns);
      if (!s.is_ok()) {
        err_ << "dlock lab: clock jump: " << s.to_string() << "\n";
        return;
      }
      note("clock-jump", backend_->server_name(f.target), f.duration_ms,
           "wall clock jumps forward " + ms, t);
      break;
    }
  }
  ++faults_started_;
}

void Runner::end_fault(const Active& a) {
  switch (a.kind) {
    case FaultKind::kPause:
      (void)clients_[a.index].signal(SIGCONT);
      note("resume", a.target, std::nullopt, "SIGCONT", monotonic_ns());
      break;
    case FaultKind::kPartition:
      (void)backend_->partition(a.index, false);
      note("heal", a.target, std::nullopt, "connections pass again", monotonic_ns());
      break;
    case FaultKind::kCrash:
    case FaultKind::kLeader: {
      Status s = backend_->restart(a.index);
      // Logged once it serves again: the period covers the whole outage.
      note("restart", a.target, std::nullopt,
           s.is_ok() ? "serving again" : "restart failed: " + s.to_string(), monotonic_ns());
      if (!s.is_ok()) err_ << "dlock lab: restart " << a.target << ": " << s.to_string() << "\n";
      break;
    }
    case FaultKind::kClock:
      break;
  }
}

int Runner::run(const std::function<bool()>& interrupted) {
  NemesisOptions no;
  no.faults = o_.faults;
  no.duration_ms = o_.duration_ms;
  no.ttl_ms = o_.ttl_ms;
  no.clients = o_.clients;
  no.servers = backend_->servers();
  no.seed = o_.seed;
  no.crash_servers = o_.crash_servers;
  no.first_fault_ms = std::min<int64_t>(1'000, o_.duration_ms / 4);
  const auto plan = plan_faults(no);
  t0_ns_ = monotonic_ns();
  const int64_t end_ns = t0_ns_ + o_.duration_ms * 1'000'000;
  size_t next = 0;
  int64_t next_progress = t0_ns_ + 1'000'000'000;
  while (!interrupted()) {
    int64_t now = monotonic_ns();
    if (now >= end_ns) break;
    // Ends first (a client resumes before the next fault picks a target), then due starts.
    for (size_t i = 0; i < active_.size();) {
      if (active_[i].end_ns <= now) {
        Active a = active_[i];
        active_.erase(active_.begin() + static_cast<long>(i));
        end_fault(a);
      } else {
        ++i;
      }
    }
    while (next < plan.size() && t0_ns_ + plan[next].at_ms * 1'000'000 <= now) {
      begin_fault(plan[next++], now);
    }
    if (now >= next_progress) {
      poll_progress();
      print_progress(now);
      next_progress += 1'000'000'000;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (interrupted()) out_ << "interrupted: stopping early\n";
  return kLabOk;
}

void Runner::stop() {
  if (stopped_) return;
  stopped_ = true;
  // Undo every fault still in force so that the clients can finish their cycle and release.
  while (!active_.empty()) {
    Active a = active_.front();
    active_.erase(active_.begin());
    end_fault(a);
  }
  for (auto& c : clients_) (void)c.signal(SIGTERM);
  // A client may be waiting in acquire (up to --wait) or in its work: give it that long.
  const auto grace = std::chrono::milliseconds(
      std::max<int64_t>(o_.wait_ms > 0 ? o_.wait_ms : o_.ttl_ms, o_.ttl_ms) + o_.work_ms + 2'000);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& c : clients_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!c.wait_for(std::max(left, std::chrono::milliseconds(0)))) {
      (void)c.signal(SIGKILL);
      c.wait();
    }
  }
  if (resource_) (void)resource_->stop(2s);
  backend_.reset();
  // Keep the servers' logs, drop their data: etcd preallocates 64 MB of WAL per member, and a
  // matrix of runs would otherwise fill the disk.
  std::error_code ec;
  std::vector<fs::path> data;
  for (auto it = fs::recursive_directory_iterator(fs::path(paths_.dir) / "servers", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() != ".log") data.push_back(it->path());
  }
  for (const auto& f : data) fs::remove(f, ec);
}

int Runner::report() {
  std::vector<Event> history;
  size_t truncated = 0;
  std::vector<std::string> files = {raw("resource"), raw("nemesis")};
  for (size_t c = 0; c < o_.clients; ++c) files.push_back(raw("c" + std::to_string(c)));
  for (const auto& f : files) {
    if (!fs::exists(f)) continue;
    auto h = read_history(f);
    if (!h.is_ok()) {
      err_ << "dlock lab: " << h.status().to_string() << "\n";
      continue;
    }
    truncated += h->truncated_lines;
    history.insert(history.end(), h->events.begin(), h->events.end());
  }
  sort_by_time(history);
  const fs::path dir(paths_.dir);
  const std::string hist = (dir / "history.jsonl").string(), rep = (dir / "report.txt").string(),
                    verdicts = (dir / "verdicts.json").string(),
                    timeline = (dir / "timeline.html").string();
  Status s = write_history(hist, history);
  if (!s.is_ok()) err_ << "dlock lab: " << s.to_string() << "\n";
  CheckReport report = check_history(history);
  std::string text = format_report(report, history);
  std::ofstream(rep) << text;
  std::ofstream(verdicts) << report_json(report, history) << "\n";
  TimelineOptions to;
  to.title = "dlock lab: " + std::string(backend_kind_name(o_.backend)) + ", seed " +
             std::to_string(o_.seed) + ", fencing " + (o_.fencing ? "on" : "off");
  to.subtitle = o_.command_line;
  to.report_text = text;
  std::ofstream(timeline) << render_timeline_html(history, report, to);

  out_ << "\n" << format_summary(summarize(history));
  if (truncated > 0) out_ << "(" << truncated << " cut-off last lines skipped)\n";
  out_ << "\n" << text;
  if (!text.empty() && text.back() != '\n') out_ << "\n";
  out_ << "\nhistory:  " << hist << "\nreport:   " << rep << "\nverdicts: " << verdicts
       << "\ntimeline: " << timeline << "\n";
  return report.violated() ? kLabViolation : kLabOk;
}

}  // namespace sd::dlock::lab
