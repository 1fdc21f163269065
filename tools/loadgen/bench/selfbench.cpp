// sd-load-selfbench: how fast is the generator itself? Serves sd::net::HttpServer's built-in
// GET /healthz and, unless --serve-only, drives it with the engine in the same process. Run the
// server here with --serve-only and `sd-load -w http-get` in another process to see each side's
// CPU use: if the server saturates its core while sd-load does not, the generator is not the
// bottleneck of what it measures.
#include <csignal>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sd/loadgen/engine.hpp"
#include "sd/net/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sd-load-selfbench: the load engine against an in-process sd::net::HttpServer"};
  int server_threads = 1;
  uint32_t connections = 16, threads = 1;
  double seconds = 3, rate = 0;
  bool serve_only = false;
  uint16_t port = 0;
  app.add_option("--server-threads", server_threads, "HttpServer I/O threads (default 1)");
  app.add_option("-c,--connections", connections, "Connections (default 16)");
  app.add_option("-T,--threads", threads, "Engine threads (default 1)");
  app.add_option("-d,--duration", seconds, "Measured seconds (default 3)");
  app.add_option("-R,--rate", rate, "Open-loop rate (default closed loop)");
  app.add_option("--port", port, "Port (default: any free port)");
  app.add_flag("--serve-only", serve_only, "Only serve /healthz until SIGINT/SIGTERM");
  CLI11_PARSE(app, argc, argv);

  sd::net::ServerOptions so;
  so.threads = server_threads;
  so.port = port;
  so.handle_signals = serve_only;
  sd::net::HttpServer server(so, sd::net::Router{});
  if (auto st = server.start(); !st.is_ok()) {
    std::cerr << st.to_string() << "\n";
    return 1;
  }
  if (serve_only) {
    std::cerr << "serving GET /healthz on 127.0.0.1:" << server.port() << "\n";
    server.run();
    return 0;
  }
  std::thread serving([&] { server.run(); });

  auto w = sd::loadgen::make_workload("http-get", {});
  sd::loadgen::RunConfig cfg;
  cfg.workload = *w;
  cfg.target.port = server.port();
  cfg.connections = connections;
  cfg.threads = threads;
  cfg.rate = rate;
  cfg.warmup = std::chrono::milliseconds(500);
  cfg.duration = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  auto r = sd::loadgen::run(cfg);
  server.stop();
  serving.join();
  if (!r.is_ok()) {
    std::cerr << r.status().to_string() << "\n";
    return 1;
  }
  std::cout << sd::loadgen::to_json(*r).dump(2) << "\n";
  return 0;
}
