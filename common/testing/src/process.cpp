#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "sd/testing/testing.hpp"

extern char** environ;

namespace sd::testing {
namespace {

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void redirect(const std::string& path, int target_fd) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, target_fd);  // dup2 clears O_CLOEXEC on the new fd
    ::close(fd);
  }
}

}  // namespace

Result<Process> Process::spawn(const std::vector<std::string>& argv, ProcessOptions options) {
  if (argv.empty()) return invalid_argument("empty argv");
  // Build argv/envp before fork: only async-signal-safe calls are allowed in the child.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && options.env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(kv);
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return internal_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (options.new_process_group) ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    redirect(options.stdout_path, STDOUT_FILENO);
    redirect(options.stderr_path, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (options.new_process_group) ::setpgid(pid, pid);  // avoid a race with the child's own call
  Process p;
  p.pid_ = pid;
  p.group_ = options.new_process_group;
  return p;
}

Process::Process(Process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), group_(o.group_), exit_code_(o.exit_code_) {}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !exit_code_) {
      (void)signal(SIGKILL);
      wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    group_ = o.group_;
    exit_code_ = o.exit_code_;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    (void)signal(SIGKILL);
    wait();
  }
}

Status Process::signal(int sig) {
  if (pid_ <= 0 || exit_code_) return Status::ok();
  int rc = group_ ? ::kill(-pid_, sig) : ::kill(pid_, sig);
  if (rc != 0 && errno != ESRCH) return internal_error(std::strerror(errno));
  return Status::ok();
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = decode_wait_status(status);
      return exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      exit_code_ = -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int Process::wait() {
  if (exit_code_) return *exit_code_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      exit_code_ = -1;
      return -1;
    }
  }
  exit_code_ = decode_wait_status(status);
  return *exit_code_;
}

bool Process::running() {
  return !wait_for(std::chrono::milliseconds(0)).has_value();
}

int Process::stop(std::chrono::milliseconds grace) {
  if (exit_code_) return *exit_code_;
  (void)signal(SIGTERM);
  if (auto c = wait_for(grace)) return *c;
  (void)signal(SIGKILL);
  return wait();
}

Result<StartedServer> start_server(
    const std::function<std::vector<std::string>(uint16_t port)>& argv_for,
    const std::string& log_path, ServerStartOptions options) {
  using namespace std::chrono_literals;
  for (int attempt = 0; attempt < options.attempts; ++attempt) {
    const uint16_t port = options.fixed_port != 0 ? options.fixed_port : free_port();
    ProcessOptions popts;
    popts.stdout_path = log_path;
    popts.stderr_path = log_path;
    popts.die_with_parent = options.die_with_parent;
    auto p = Process::spawn(argv_for(port), popts);
    if (!p) return p.status();
    const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
    while (std::chrono::steady_clock::now() < deadline && p->running()) {
      if (wait_for_port(port, 50ms)) return StartedServer{std::move(*p), port};
    }
    // Exited (port taken?) or hung: the destructor kills it; try again.
    std::this_thread::sleep_for(100ms);
  }
  return unavailable("server did not start; log " + log_path + ":\n" + read_file(log_path));
}

}  // namespace sd::testing
