#pragma once
// Connections to Redis servers, hiredis underneath (shared by dlock's redis:// and redlock://
// backends and the rate limiter's redis:// store).
//
// Every connection is a non-blocking hiredis context driven by poll(): hiredis connects and parses
// RESP (redisBufferRead + redisGetReplyFromReader); commands are formatted by hiredis but written
// here with send(MSG_NOSIGNAL), because hiredis's own write() would raise SIGPIPE in the whole
// process when a server dies. Driving sockets with poll() gives one deadline for connect + command,
// and lets the Redlock backend talk to N servers in parallel on one thread (exchange()).
// A connection that timed out or failed is "broken" and never reused (a late reply would otherwise
// be read as the answer to the next command); pools drop it and the next call reconnects.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/status.hpp"

struct redisContext;

namespace sd::redis {

using SteadyTime = std::chrono::steady_clock::time_point;

struct RedisAddr {
  std::string host;
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[v6]:port")
};

// A decoded RESP reply.
struct RedisValue {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;  // string, status and error replies
  std::vector<RedisValue> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_int() const { return type == Type::kInteger; }
  bool is_str() const { return type == Type::kString || type == Type::kStatus; }
  bool is_array() const { return type == Type::kArray; }
};

using RedisArgv = std::vector<std::string>;

class RedisConn {
 public:
  // Starts a non-blocking connect; it completes (or fails) inside the first exchange.
  static std::unique_ptr<RedisConn> open(const RedisAddr& addr);
  ~RedisConn();
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  const RedisAddr& addr() const { return addr_; }
  bool broken() const { return !error_.is_ok(); }
  const Status& error() const { return error_; }

  // One command, one reply, connect included, before `deadline`. Error replies become Status
  // (kUnavailable for LOADING/BUSY/READONLY/MASTERDOWN/TRYAGAIN, else kInternal); transport
  // failures and timeouts are kUnavailable naming the server, and break the connection.
  Result<RedisValue> command(const RedisArgv& argv, SteadyTime deadline);

  // Queues a command without waiting for its reply (pub/sub: SUBSCRIBE's confirmations are read
  // with next_push). Flushed by the next command/next_push.
  Status send(const RedisArgv& argv);
  // The next reply or pushed message, waiting until `deadline`; nullopt on timeout (the connection
  // stays usable: nothing was pending). For subscribed connections.
  Result<std::optional<RedisValue>> next_push(SteadyTime deadline);

  // Pipelining: sends every command in one write and waits for all their replies before
  // `deadline` (one round trip). Replies come back raw, error replies included (type kError, so
  // a caller can tell NOSCRIPT from other errors); a transport failure or timeout fails the whole
  // call with kUnavailable and breaks the connection.
  Result<std::vector<RedisValue>> pipeline(std::span<const RedisArgv> argvs, SteadyTime deadline);

 private:
  friend std::vector<Result<RedisValue>> redis_exchange(std::span<RedisConn* const> conns,
                                                        std::span<const RedisArgv> argvs,
                                                        SteadyTime deadline);
  explicit RedisConn(RedisAddr addr) : addr_(std::move(addr)) {}
  short poll_events() const;
  void on_events(short revents);
  std::optional<RedisValue> take_reply();  // a complete parsed reply, if buffered
  void fail(const std::string& what);

  RedisAddr addr_;
  redisContext* ctx_ = nullptr;
  bool connecting_ = true;
  std::string out_;  // formatted commands not yet written
  Status error_;     // non-ok: broken
};

// Sends argvs[i] on conns[i], all at once, and waits until each has its reply or `deadline`
// passes. results[i] is conns[i]'s reply or error (a timed-out connection is broken).
std::vector<Result<RedisValue>> redis_exchange(std::span<RedisConn* const> conns,
                                               std::span<const RedisArgv> argvs,
                                               SteadyTime deadline);

// Status of an error reply (see RedisConn::command).
Status redis_error_status(const RedisAddr& addr, const std::string& error_reply);

// A Lua script run with EVALSHA, so each call sends the 40-byte SHA1 instead of the body. The
// SHA1 is learned from SCRIPT LOAD the first time the script runs, then shared by every
// connection; a server that answers NOSCRIPT (restarted, SCRIPT FLUSH, another server) gets
// SCRIPT LOAD and the calls that failed are retried once.
class RedisScript {
 public:
  explicit RedisScript(std::string body) : body_(std::move(body)) {}
  const std::string& body() const { return body_; }
  std::string sha() const;                     // "" until first loaded
  void set_sha(const std::string& sha) const;  // a cache: from SCRIPT LOAD's reply

 private:
  std::string body_;
  mutable std::mutex mu_;
  mutable std::string sha_;  // guarded by mu_
};

// One script invocation: EVALSHA <sha> <keys.size()> keys... args...
struct ScriptCall {
  const RedisScript* script = nullptr;
  RedisArgv keys;
  RedisArgv args;
};

// Runs every call pipelined on `conn` (one round trip; plus one SCRIPT LOAD per script not yet
// loaded, and one more round trip for calls answered NOSCRIPT). Replies are raw as in
// RedisConn::pipeline (a script error is a kError value); transport failures are kUnavailable.
Result<std::vector<RedisValue>> run_scripts(RedisConn& conn, std::span<const ScriptCall> calls,
                                            SteadyTime deadline);

// A mutex-guarded free list of idle connections to one server.
class RedisPool {
 public:
  RedisPool(RedisAddr addr, Duration timeout, size_t max_idle = 16)
      : addr_(std::move(addr)), timeout_(timeout), max_idle_(max_idle) {}
  const RedisAddr& addr() const { return addr_; }
  Duration timeout() const { return timeout_; }

  std::unique_ptr<RedisConn> checkout();          // idle or newly opened (connect pending)
  void checkin(std::unique_ptr<RedisConn> conn);  // dropped if broken or the pool is full
  // checkout + command with the pool's timeout + checkin.
  Result<RedisValue> command(const RedisArgv& argv);

 private:
  RedisAddr addr_;
  Duration timeout_;
  size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RedisConn>> idle_;  // guarded by mu_
};

}  // namespace sd::redis
