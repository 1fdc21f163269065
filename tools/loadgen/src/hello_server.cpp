// sd-hello: the trivial JSON endpoint the bench runner compares with nginx's `return 200`.
// GET /hello -> 200 {"ok":true} on sd::net::HttpServer (plus its built-in /healthz and /metrics).
// Serves until SIGINT/SIGTERM (graceful stop). Exit codes: 0 clean stop, 1 bind failure, 2 usage.
#include <cstdint>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "sd/net/http.hpp"
#include "sd/net/router.hpp"
#include "sd/net/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sd-hello: GET /hello -> 200 {\"ok\":true} (the HTTP core's benchmark endpoint)"};
  uint16_t port = 7400;
  int threads = 1;
  std::string host = "127.0.0.1";
  app.add_option("--host", host, "Address to bind")->capture_default_str();
  app.add_option("--port", port, "Port to bind (0: any free port)")->capture_default_str();
  app.add_option("--threads", threads, "I/O threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sd::net::Router router;
  // A fixed body, built once: the endpoint measures the server, not a JSON serializer.
  const std::string body = "{\"ok\":true}";
  router.add(sd::net::Method::kGet, "/hello", [&body](sd::net::Request&) {
    sd::net::Response r;
    r.body = body;
    return r;
  });

  sd::net::ServerOptions so;
  so.host = host;
  so.port = port;
  so.threads = threads;
  so.handle_signals = true;
  sd::net::HttpServer server(so, std::move(router));
  if (auto st = server.start(); !st.is_ok()) {
    std::cerr << "sd-hello: " << st.to_string() << "\n";
    return 1;
  }
  std::cerr << "sd-hello: serving GET /hello on " << host << ":" << server.port() << "\n";
  server.run();
  return 0;
}
