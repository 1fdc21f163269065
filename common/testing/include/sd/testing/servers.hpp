#pragma once
// Real peer servers for cross-process tests: redis-server and etcd clusters on 127.0.0.1, on free
// ports, data under a caller-owned directory, always SIGKILLed on destruction
// (sd::testing::Process).
//
//   sd::testing::TempDir dir;
//   auto redis = sd::testing::RedisServer::start(dir.file("redis"));   // -> Result<unique_ptr<>>
//   auto etcd = sd::testing::EtcdCluster::start(dir.file("etcd"), 3);  // elects a leader first
//   open_backend("etcd://" + (*etcd)->endpoints());
//
// Binaries are found on PATH; a missing one is kNotFound naming the Debian package, so tests fail
// (never skip) with an actionable message.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/testing/testing.hpp"

namespace sd::testing {

// Absolute path of an executable on PATH; kNotFound naming the Debian package to install otherwise.
Result<std::string> find_executable(const std::string& name, const std::string& debian_package);

struct RedisOptions {
  bool appendonly = false;  // AOF with appendfsync always: acknowledged writes survive kill -9
  // Added to redis-server's environment (e.g. an LD_PRELOAD clock shim for clock-jump faults).
  std::map<std::string, std::string> env = {};
};

// One redis-server on 127.0.0.1:<free port>, data and log (redis.log) in `dir` (created if missing;
// use one dir per server). SIGKILLed on destruction.
class RedisServer {
 public:
  static Result<std::unique_ptr<RedisServer>> start(const std::string& dir,
                                                    RedisOptions options = {});
  ~RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const;  // "127.0.0.1:<port>"
  const std::string& dir() const { return dir_; }
  std::string log_path() const;
  Status kill();     // SIGKILL + reap (ok if already stopped)
  Status restart();  // start again, same port/dir/options, waits until it answers PING
  bool running();

 private:
  RedisServer() = default;
  // Spawns on port_ and waits for PING; kUnavailable if the process exited (e.g. port taken).
  Status spawn_and_wait(std::chrono::milliseconds timeout);
  std::string exe_, dir_;
  RedisOptions options_;
  uint16_t port_ = 0;
  std::optional<Process> proc_;
};

// Sends PING to a Redis on 127.0.0.1:port; true on +PONG.
bool redis_ping(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
// The process id the Redis on 127.0.0.1:port reports (INFO server); 0 if none answers.
long redis_pid(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// n etcd members on 127.0.0.1 (client and peer ports free), member i's data in dir/m<i> and its log
// in dir/m<i>.log. Fast elections (heartbeat 50 ms, election timeout 500 ms) so failover tests are
// quick. start() returns once every member is healthy and a leader exists.
class EtcdCluster {
 public:
  static Result<std::unique_ptr<EtcdCluster>> start(const std::string& dir, size_t members);
  ~EtcdCluster() = default;
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  size_t size() const { return members_.size(); }
  std::string endpoints() const;  // "127.0.0.1:p1,127.0.0.1:p2,..." (client ports)
  uint16_t client_port(size_t i) const { return members_.at(i).client_port; }
  uint16_t peer_port(size_t i) const { return members_.at(i).peer_port; }
  std::string log_path(size_t i) const;
  Status kill(size_t i);     // SIGKILL member i + reap
  Status restart(size_t i);  // restart member i with its data dir (rejoins); waits until healthy
  bool running(size_t i);
  // Index of the current leader: waits (up to `timeout`) until a running member reports itself as
  // leader and every other running member agrees. kUnavailable if none in time.
  Result<size_t> leader(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until every running member answers GET /health with {"health":"true"}.
  Status wait_healthy(std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  struct Member {
    std::string name, data_dir, log;
    uint16_t client_port = 0, peer_port = 0;
    std::optional<Process> proc;
  };
  EtcdCluster() = default;
  Status spawn(size_t i);
  std::string exe_, dir_, initial_cluster_, token_;
  std::vector<Member> members_;
};

}  // namespace sd::testing
