// dlock-lab-resource: the fenced resource of the safety lab as a small HTTP service (routes in
// resource_routes.hpp). Every read and write is appended to --history as a "resource" event.
//
//   dlock-lab-resource --port 0 --fencing on --history var/lab/resource.jsonl
//
// Prints "listening on http://127.0.0.1:PORT" on stdout once it accepts connections; runs until
// SIGINT/SIGTERM. Exit codes: 0 clean shutdown (or --help), 1 could not start (bind, history
// file), 2 usage error.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "sd/base/log.hpp"
#include "sd/dlock/lab/fenced_store.hpp"
#include "sd/dlock/lab/history.hpp"
#include "sd/dlock/lab/resource_routes.hpp"
#include "sd/net/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"dlock-lab-resource: fenced storage for the dlock safety lab"};
  std::string host = "127.0.0.1";
  int port = 0;
  std::string fencing = "on";
  std::string history_path;
  app.add_option("--host", host, "Address to bind")->capture_default_str();
  app.add_option("--port", port, "Port to bind (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--fencing", fencing, "Reject stale fencing tokens (on) or accept all (off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--history", history_path, "JSONL file the resource's events are appended to")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  auto history = sd::dlock::lab::HistoryWriter::open(history_path);
  if (!history) {
    std::cerr << "dlock-lab-resource: " << history.status().to_string() << "\n";
    return 1;
  }
  auto resource =
      std::make_shared<sd::dlock::lab::FencedResource>(fencing == "on", std::move(*history));
  sd::net::ServerOptions opts;
  opts.host = host;
  opts.port = static_cast<uint16_t>(port);
  opts.threads = 1;  // decisions are serialized by FencedResource anyway
  opts.handle_signals = true;
  // Larger than the routes' own limit, so an oversized body gets their JSON 400.
  opts.body_limit = 64 << 10;
  sd::net::HttpServer server(opts, sd::dlock::lab::make_resource_router(resource));
  sd::Status st = server.start();
  if (!st.is_ok()) {
    std::cerr << "dlock-lab-resource: " << st.to_string() << "\n";
    return 1;
  }
  std::printf("listening on http://%s:%u\n", host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.run();
  if (resource->history_errors() > 0) {
    std::cerr << "dlock-lab-resource: " << resource->history_errors()
              << " history appends failed; the history is incomplete\n";
    return 1;
  }
  return 0;
}
