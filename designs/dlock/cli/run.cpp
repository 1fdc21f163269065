// `dlock run NAME -- CMD ARGS...`: hold a lock (with a kept-alive Session) while CMD runs.
//
// Signals: SIGINT, SIGTERM, SIGHUP and SIGCHLD are blocked in every thread (before the Session's
// keepalive thread starts) and taken synchronously with sigtimedwait() by the main thread, which
// also polls the child and the lock. CMD gets the original mask back before exec.
// CMD also gets PR_SET_PDEATHSIG(SIGTERM): if dlock is killed outright, CMD does not run on
// unprotected (its process group's other members are not covered).
// Exit codes: see cli.hpp.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "sd/dlock/client.hpp"

extern char** environ;

namespace sd::dlock::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(20);

// Waits up to kPoll for one of `set`; returns the signal number or 0.
int wait_signal(const sigset_t& set) {
  timespec ts{0, std::chrono::duration_cast<std::chrono::nanoseconds>(kPoll).count()};
  siginfo_t info;
  int sig = ::sigtimedwait(&set, &info, &ts);
  return sig > 0 ? sig : 0;
}

bool forwardable(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitUnavailable;
}

std::vector<std::string> child_env(const RunArgs& a, const Session& s, Token token) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("DLOCK_TOKEN=") || kv.starts_with("DLOCK_NAME=") ||
        kv.starts_with("DLOCK_LEASE_ID=")) {
      continue;
    }
    env.emplace_back(kv);
  }
  env.push_back("DLOCK_TOKEN=" + std::to_string(token));
  env.push_back("DLOCK_NAME=" + a.name);
  env.push_back("DLOCK_LEASE_ID=" + s.lease_id());
  return env;
}

// Forks and execs CMD in its own process group. Returns the pid, or -1 after printing why
// (exec failures are reported back through a CLOEXEC pipe).
pid_t spawn(const RunArgs& a, const std::vector<std::string>& env, const sigset_t& child_mask) {
  std::vector<char*> argv;
  for (const auto& s : a.command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  const pid_t parent = ::getpid();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::cerr << "dlock: pipe: " << std::strerror(errno) << "\n";
    return -1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "dlock: fork: " << std::strerror(errno) << "\n";
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {  // child: async-signal-safe calls only
    ::close(fds[0]);
    ::setpgid(0, 0);
    // If dlock itself dies (even by SIGKILL), nobody keeps the lease alive: stop CMD too.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(kExitLost);
    ::signal(SIGPIPE, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    ::execvpe(argv[0], argv.data(), envp.data());
    int err = errno;
    ssize_t w = ::write(fds[1], &err, sizeof err);
    (void)w;
    ::_exit(kExitExecFailed);
  }
  ::setpgid(pid, pid);  // also in the parent, so kill(-pid) works as soon as we return
  ::close(fds[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(fds[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    std::cerr << "dlock: cannot execute " << a.command[0] << ": " << std::strerror(err) << "\n";
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return -1;
  }
  return pid;
}

int backend_failure(const Status& s) {
  std::cerr << "dlock: " << s.to_string() << "\n";
  return s.code() == Code::kInvalidArgument ? kExitUsage : kExitUnavailable;
}

}  // namespace

int cmd_run(const std::string& uri, const RunArgs& a) {
  auto ttl = parse_duration(a.ttl);
  auto wait = parse_duration(a.wait);
  auto grace = parse_duration(a.grace);
  if (!ttl || ttl->count() == 0 || !wait || !grace) {
    std::cerr << "dlock: bad duration (use 500ms, 10s, 2m or plain milliseconds)\n";
    return kExitUsage;
  }

  sigset_t handled, original;
  sigemptyset(&handled);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, sig);
  ::pthread_sigmask(SIG_BLOCK, &handled, &original);  // before any thread exists

  auto backend = open_backend(uri);
  if (!backend) return backend_failure(backend.status());
  SessionOptions so;
  so.ttl = *ttl;
  auto session = Session::create(*backend, so);
  if (!session) return backend_failure(session.status());
  std::atomic<bool> lost{false};
  (*session)->on_lost([&lost](const Status&) { lost = true; });

  // Acquire on a helper thread so that SIGINT/SIGTERM can interrupt a long --wait: closing the
  // session revokes the lease, which ends the queued wait.
  SharedMutex lock(*session, a.name);
  std::optional<Result<Token>> acquired;
  std::atomic<bool> done{false};
  std::thread acquirer([&] {
    acquired = a.shared ? lock.lock_shared(*wait) : lock.lock(*wait);
    done = true;
  });
  int interrupted = 0;
  while (!done) {
    int sig = wait_signal(handled);
    if (forwardable(sig) && interrupted == 0) {
      interrupted = sig;
      (void)(*session)->close();
    }
  }
  acquirer.join();
  if (interrupted != 0) {
    (void)(*session)->close();
    return 128 + interrupted;
  }
  if (!acquired->is_ok()) {
    const Status& s = acquired->status();
    (void)(*session)->close();
    if (s.code() == Code::kConflict) {
      std::cerr << "dlock: " << a.name << " not acquired within " << a.wait << " (" << s.message()
                << ")\n";
      return kExitNotAcquired;
    }
    return backend_failure(s);
  }
  const Token token = acquired->value();

  pid_t pid = spawn(a, child_env(a, **session, token), original);
  if (pid < 0) {
    (void)lock.unlock();
    (void)(*session)->close();
    return kExitExecFailed;
  }

  bool lost_while_running = false;
  // When to SIGKILL after a lost lock; max() = not armed. (A plain time_point rather than an
  // optional: GCC 12 -O3 reports a false maybe-uninitialized on the optional.)
  SteadyClock::time_point kill_at = SteadyClock::time_point::max();
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (!lost_while_running && (lost || !lock.held())) {
      lost_while_running = true;
      std::cerr << "dlock: lock " << a.name << " lost (" << (*session)->lost_reason().to_string()
                << "); terminating " << a.command[0] << "\n";
      ::kill(-pid, SIGTERM);
      kill_at = SteadyClock::now() + *grace;
    }
    if (kill_at != SteadyClock::time_point::max() && SteadyClock::now() >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = SteadyClock::time_point::max();
    }
    int sig = wait_signal(handled);
    if (forwardable(sig)) ::kill(-pid, sig);
  }

  if (lost_while_running) {
    // CMD is gone; give the rest of its process group what is left of the grace, then kill it.
    while (SteadyClock::now() < kill_at && ::kill(-pid, 0) == 0) {
      std::this_thread::sleep_for(kPoll);
    }
    ::kill(-pid, SIGKILL);
    (void)(*session)->close();
    return kExitLost;
  }
  if (Status s = lock.unlock(); !s.is_ok()) {
    std::cerr << "dlock: warning: release of " << a.name << " failed: " << s.to_string() << "\n";
  }
  (void)(*session)->close();
  return decode(status);
}

}  // namespace sd::dlock::cli
