#pragma once
// Stop signals for server mains that shut down in their own order (answer parked long-polls,
// close streams) instead of ServerOptions::handle_signals.
//
//   int main() {
//     sd::net::block_stop_signals();  // first thing: threads started later inherit the mask
//     ... build the server ...
//     sd::net::run_until_stop_signal(server, "dlockd", [&] { service->shutdown(); });
//   }

#include <functional>
#include <string>

#include "sd/net/server.hpp"

namespace sd::net {

// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread (and every thread it starts later).
void block_stop_signals();

// Runs server.run() on this thread while a dedicated thread waits for SIGINT/SIGTERM; on one it
// logs "<name>: signal N, shutting down", calls on_signal (if set) and stops the server. Returns
// once the server has stopped, for a signal or any other reason (the waiting thread is woken with
// SIGUSR1 and joined). Requires block_stop_signals() first.
void run_until_stop_signal(HttpServer& server, const std::string& name,
                           const std::function<void()>& on_signal = {});

}  // namespace sd::net
