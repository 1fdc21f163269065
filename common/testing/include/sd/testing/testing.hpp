#pragma once
// Test helpers for cross-process tests: loopback ports, temp dirs, and child processes that are
// always stopped (the destructor SIGKILLs and reaps).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sd/base/status.hpp"

namespace sd::testing {

// A currently free TCP port on 127.0.0.1 (bound to port 0 and released). Another process may grab
// it before use; tests tolerate that by retrying server start where needed.
uint16_t free_port();

// Polls a TCP connect to 127.0.0.1:port until it succeeds or timeout passes.
bool wait_for_port(uint16_t port, std::chrono::milliseconds timeout);

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sd-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct ProcessOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the parent's environment
  std::string stdout_path;                 // "" = inherit
  std::string stderr_path;                 // "" = inherit
  bool new_process_group = false;          // kill() then signals the whole group
  // The kernel SIGKILLs the child when the spawning *thread* exits (PR_SET_PDEATHSIG), so a test
  // binary that crashes or hits a CTest timeout leaves no server behind. Only for children spawned
  // from a thread that outlives them (e.g. the test's main thread).
  bool die_with_parent = false;
};

// A child process. Never leaks: the destructor sends SIGKILL (to its group if it has one) and
// reaps.
class Process {
 public:
  static Result<Process> spawn(const std::vector<std::string>& argv, ProcessOptions options = {});
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  Status signal(int sig);  // kill(2) (group-wide when new_process_group)
  // Waits for exit up to timeout; returns the wait status as an exit code (128+signal if killed),
  // or nullopt if still running.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  int wait();  // blocks until exit
  bool running();
  // SIGTERM, wait up to grace, then SIGKILL; returns the exit code.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

 private:
  Process() = default;
  pid_t pid_ = -1;
  bool group_ = false;
  std::optional<int> exit_code_;
};

struct ServerStartOptions {
  uint16_t fixed_port = 0;                          // 0: a free port, a new one for each attempt
  std::chrono::milliseconds start_timeout{10'000};  // per attempt, until the port accepts
  int attempts = 5;
  bool die_with_parent = true;  // see ProcessOptions
};

struct StartedServer {
  Process process;
  uint16_t port = 0;
};

// Starts a server that listens on 127.0.0.1: spawns argv_for(port) with stdout and stderr appended
// to log_path and waits until the port accepts connections. A child that exits first (the port was
// taken meanwhile) or does not listen in time is killed and started again. kUnavailable with the
// log's contents when every attempt failed.
Result<StartedServer> start_server(
    const std::function<std::vector<std::string>(uint16_t port)>& argv_for,
    const std::string& log_path, ServerStartOptions options = {});

// Polls pred() every 2 ms until it holds or timeout passes; returns its last value. For waiting on
// something another thread or process does (real time), never for TTL logic (use FakeClock).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

}  // namespace sd::testing
