#include "sd/testing/servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"

namespace sd::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kStartAttempts = 5;  // fresh ports per attempt: another process may take ours

Status make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return internal_error("cannot create " + dir + ": " + ec.message());
  return Status::ok();
}

std::string tail(const std::string& path, size_t max_bytes = 2000) {
  std::string s = read_file(path);
  return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
}

// `n` distinct free ports (free_port() may hand out the same one twice in a row).
std::vector<uint16_t> distinct_free_ports(size_t n) {
  std::set<uint16_t> seen;
  std::vector<uint16_t> out;
  while (out.size() < n) {
    uint16_t p = free_port();
    if (seen.insert(p).second) out.push_back(p);
  }
  return out;
}

Status kill_and_reap(std::optional<Process>& proc) {
  if (!proc) return Status::ok();
  Status s = proc->signal(SIGKILL);
  proc->wait();
  proc.reset();
  return s;
}

// A short-timeout HTTP client: the health probes must not hang on a stopped member.
sd::net::HttpClient probe_client(uint16_t port) {
  sd::net::ClientOptions o;
  o.connect_timeout = 300ms;
  o.request_timeout = 1'000ms;
  return sd::net::HttpClient("127.0.0.1", port, o);
}

bool etcd_healthy(uint16_t port) {
  auto c = probe_client(port);
  auto r = c.get("/health");
  if (!r.is_ok() || r->status != 200) return false;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  return j.is_object() && j.value("health", std::string()) == "true";
}

// uint64 fields come as JSON strings from etcd's grpc-gateway; compare their text.
std::string id_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

struct EtcdStatus {
  std::string member_id, leader;
};

std::optional<EtcdStatus> etcd_status(uint16_t port) {
  auto c = probe_client(port);
  auto r = c.post_json("/v3/maintenance/status", nlohmann::json::object());
  if (!r.is_ok() || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("header") || !j["header"].contains("member_id") ||
      !j.contains("leader"))
    return std::nullopt;
  return EtcdStatus{id_text(j["header"]["member_id"]), id_text(j["leader"])};
}

}  // namespace

Result<std::string> find_executable(const std::string& name, const std::string& debian_package) {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return std::filesystem::absolute(candidate, ec).string();
    }
    start = end + 1;
  }
  return not_found(name + " not found on PATH; install the Debian package " + debian_package +
                   " (apt-get install " + debian_package + ")");
}

// ---------------------------------------------------------------------------------------------
// Redis

namespace {

// Sends one RESP command to 127.0.0.1:port and returns the raw reply: a simple line ("+PONG\r\n",
// "-LOADING ...\r\n") or a whole bulk string ("$<n>\r\n<n bytes>\r\n"). nullopt on any failure.
std::optional<std::string> redis_call(uint16_t port, const std::string& command,
                                      std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::optional<std::string> out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, command.data(), command.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(command.size())) {
    std::string got;
    size_t want = 0;  // total reply size once known
    auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (Clock::now() < deadline) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      size_t eol = got.find("\r\n");
      if (eol == std::string::npos) continue;
      if (got[0] != '$') {
        want = eol + 2;
      } else if (want == 0) {
        long long len = std::atoll(got.c_str() + 1);
        want = len < 0 ? eol + 2 : eol + 2 + static_cast<size_t>(len) + 2;
      }
      if (got.size() >= want) {
        out = got.substr(0, want);
        break;
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

bool redis_ping(uint16_t port, std::chrono::milliseconds timeout) {
  // While loading the AOF Redis answers -LOADING: only +PONG means ready.
  auto r = redis_call(port, "*1\r\n$4\r\nPING\r\n", timeout);
  return r && *r == "+PONG\r\n";
}

// The pid of the Redis answering on port (0 if none): tells our server from one that took the
// port first (free_port() races with other processes).
long redis_pid(uint16_t port, std::chrono::milliseconds timeout) {
  auto r = redis_call(port, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", timeout);
  if (!r) return 0;
  auto at = r->find("\r\nprocess_id:");
  return at == std::string::npos ? 0 : std::atol(r->c_str() + at + 13);
}

Result<std::unique_ptr<RedisServer>> RedisServer::start(const std::string& dir,
                                                        RedisOptions options) {
  auto exe = find_executable("redis-server", "redis-server");
  if (!exe.is_ok()) return exe.status();
  SD_RETURN_IF_ERROR(make_dir(dir));
  std::unique_ptr<RedisServer> s(new RedisServer());
  s->exe_ = *exe;
  s->dir_ = dir;
  s->options_ = options;
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    s->port_ = free_port();
    last = s->spawn_and_wait(10s);
    if (last.is_ok()) return s;
  }
  return last;
}

Status RedisServer::spawn_and_wait(std::chrono::milliseconds timeout) {
  SD_RETURN_IF_ERROR(kill_and_reap(proc_));
  // No RDB snapshots; AOF only when asked for (fsync on every write, so kill -9 loses nothing).
  std::vector<std::string> argv = {exe_, "--bind", "127.0.0.1", "--port", std::to_string(port_)};
  argv.insert(argv.end(), {"--save", "", "--dir", dir_, "--daemonize", "no"});
  argv.insert(argv.end(), {"--appendonly", options_.appendonly ? "yes" : "no"});
  if (options_.appendonly) argv.insert(argv.end(), {"--appendfsync", "always"});
  ProcessOptions po;
  po.env = options_.env;
  po.die_with_parent = true;  // started and restarted from the test's main thread
  po.stdout_path = log_path();
  po.stderr_path = log_path();
  auto p = Process::spawn(argv, po);
  if (!p.is_ok()) return p.status();
  proc_.emplace(std::move(*p));
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!proc_->running()) {
      proc_.reset();
      return unavailable("redis-server on port " + std::to_string(port_) + " exited; log tail:\n" +
                         tail(log_path()));
    }
    if (redis_ping(port_)) {
      if (redis_pid(port_) == proc_->pid()) return Status::ok();
      (void)kill_and_reap(proc_);
      return unavailable("port " + std::to_string(port_) + " is served by another Redis");
    }
    std::this_thread::sleep_for(10ms);
  }
  (void)kill_and_reap(proc_);
  return deadline_exceeded("redis-server on port " + std::to_string(port_) +
                           " did not answer PING; log tail:\n" + tail(log_path()));
}

std::string RedisServer::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string RedisServer::log_path() const {
  return (std::filesystem::path(dir_) / "redis.log").string();
}

Status RedisServer::kill() {
  return kill_and_reap(proc_);
}

Status RedisServer::restart() {
  // Same port: right after a kill it may still be briefly unavailable, so retry for a while.
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    last = spawn_and_wait(10s);
    if (last.is_ok()) return last;
    std::this_thread::sleep_for(200ms);
  }
  return last;
}

bool RedisServer::running() {
  return proc_ && proc_->running();
}

// ---------------------------------------------------------------------------------------------
// etcd

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::start(const std::string& dir, size_t members) {
  if (members == 0) return invalid_argument("an etcd cluster needs at least one member");
  auto exe = find_executable("etcd", "etcd-server");
  if (!exe.is_ok()) return exe.status();
  SD_RETURN_IF_ERROR(make_dir(dir));
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::unique_ptr<EtcdCluster> c(new EtcdCluster());
    c->exe_ = *exe;
    c->dir_ = dir;
    // A unique token keeps members of different clusters (other tests, earlier attempts) apart.
    c->token_ = "sd-test-" + std::to_string(::getpid()) + "-" + std::to_string(attempt) + "-" +
                std::to_string(Clock::now().time_since_epoch().count());
    auto ports = distinct_free_ports(2 * members);
    c->members_.resize(members);
    for (size_t i = 0; i < members; ++i) {
      Member& m = c->members_[i];
      m.name = "m" + std::to_string(i);
      m.data_dir = (std::filesystem::path(dir) / m.name).string();
      m.log = (std::filesystem::path(dir) / (m.name + ".log")).string();
      m.client_port = ports[i];
      m.peer_port = ports[members + i];
      std::error_code ec;
      std::filesystem::remove_all(m.data_dir, ec);  // a failed attempt's state would not rejoin
      std::filesystem::remove(m.log, ec);
      if (!c->initial_cluster_.empty()) c->initial_cluster_ += ",";
      c->initial_cluster_ += m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    }
    last = Status::ok();
    for (size_t i = 0; i < members && last.is_ok(); ++i) last = c->spawn(i);
    if (last.is_ok()) last = c->wait_healthy(30s);
    if (last.is_ok()) {
      auto l = c->leader();
      if (l.is_ok()) return c;
      last = l.status();
    }
    // c's destructor kills whatever started; try again on fresh ports.
  }
  return last;
}

Status EtcdCluster::spawn(size_t i) {
  Member& m = members_.at(i);
  SD_RETURN_IF_ERROR(kill_and_reap(m.proc));
  const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  // On restart the existing data dir wins and the --initial-* flags are ignored (it rejoins).
  std::vector<std::string> argv = {exe_,
                                   "--name=" + m.name,
                                   "--data-dir=" + m.data_dir,
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=" + initial_cluster_,
                                   "--initial-cluster-state=new",
                                   "--initial-cluster-token=" + token_,
                                   "--heartbeat-interval=50",
                                   "--election-timeout=500",
                                   "--logger=zap",
                                   "--log-outputs=stderr",
                                   "--log-level=warn"};
  ProcessOptions po;
  po.die_with_parent = true;  // started and restarted from the test's main thread
  po.stdout_path = m.log;
  po.stderr_path = m.log;
  auto p = Process::spawn(argv, po);
  if (!p.is_ok()) return p.status();
  m.proc.emplace(std::move(*p));
  return Status::ok();
}

Status EtcdCluster::wait_healthy(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    bool all = true;
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = members_[i];
      if (!m.proc) continue;  // killed on purpose
      if (!m.proc->running()) {
        return unavailable("etcd member " + m.name + " exited (port taken?); log tail:\n" +
                           tail(m.log));
      }
      if (!etcd_healthy(m.client_port)) all = false;
    }
    if (all) return Status::ok();
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  std::string logs;
  for (const auto& m : members_) logs += "\n--- " + m.name + ":\n" + tail(m.log, 800);
  return deadline_exceeded("etcd cluster not healthy in time" + logs);
}

std::string EtcdCluster::endpoints() const {
  std::string out;
  for (const auto& m : members_) {
    if (!out.empty()) out += ",";
    out += "127.0.0.1:" + std::to_string(m.client_port);
  }
  return out;
}

std::string EtcdCluster::log_path(size_t i) const {
  return members_.at(i).log;
}

Status EtcdCluster::kill(size_t i) {
  if (i >= members_.size()) return invalid_argument("no etcd member " + std::to_string(i));
  return kill_and_reap(members_[i].proc);
}

bool EtcdCluster::running(size_t i) {
  return i < members_.size() && members_[i].proc && members_[i].proc->running();
}

Status EtcdCluster::restart(size_t i) {
  if (i >= members_.size()) return invalid_argument("no etcd member " + std::to_string(i));
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    last = spawn(i);
    if (!last.is_ok()) return last;
    auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline && members_[i].proc->running()) {
      if (etcd_healthy(members_[i].client_port)) return Status::ok();
      std::this_thread::sleep_for(20ms);
    }
    last = unavailable("etcd member " + members_[i].name + " did not rejoin; log tail:\n" +
                       tail(members_[i].log));
    (void)kill_and_reap(members_[i].proc);
    std::this_thread::sleep_for(200ms);  // the port may still be held briefly after the kill
  }
  return last;
}

Result<size_t> EtcdCluster::leader(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    // Ask every running member; the leader must be one of them, claim it itself, and be the
    // leader every other running member sees (a follower may still name a killed leader).
    std::vector<std::optional<EtcdStatus>> st(members_.size());
    for (size_t i = 0; i < members_.size(); ++i) {
      if (running(i)) st[i] = etcd_status(members_[i].client_port);
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!st[i] || st[i]->leader != st[i]->member_id) continue;
      bool agreed = true;
      for (size_t j = 0; j < members_.size(); ++j) {
        if (running(j) && (!st[j] || st[j]->leader != st[i]->member_id)) agreed = false;
      }
      if (agreed) return i;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  return unavailable("etcd cluster has no agreed leader");
}

}  // namespace sd::testing
