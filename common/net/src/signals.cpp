#include "sd/net/signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <thread>

#include "sd/base/log.hpp"

namespace sd::net {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // only wakes the waiting thread when the server stopped otherwise
  return set;
}

}  // namespace

void block_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void run_until_stop_signal(HttpServer& server, const std::string& name,
                           const std::function<void()>& on_signal) {
  const sigset_t set = stop_signals();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) return;
    SD_LOG(kInfo) << name << ": signal " << sig << ", shutting down";
    if (on_signal) on_signal();
    server.stop();
  });
  server.run();
  pthread_kill(waiter.native_handle(), SIGUSR1);  // no-op if it already returned
  waiter.join();
}

}  // namespace sd::net
