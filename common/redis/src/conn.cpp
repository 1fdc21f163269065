// Redis connections on non-blocking hiredis contexts driven by poll() (see sd/redis/conn.hpp).

#include "sd/redis/conn.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <hiredis/hiredis.h>

namespace sd::redis {
namespace {

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      v.type = r->type == REDIS_REPLY_STRING   ? RedisValue::Type::kString
               : r->type == REDIS_REPLY_STATUS ? RedisValue::Type::kStatus
                                               : RedisValue::Type::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;  // nil
  }
  return v;
}

int ms_left(SteadyTime deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 1'000'000));
}

}  // namespace

std::string RedisAddr::str() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

Status redis_error_status(const RedisAddr& addr, const std::string& error_reply) {
  // Transient server states: retrying later (or on another server) can succeed.
  for (const char* prefix : {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN"}) {
    if (error_reply.starts_with(prefix))
      return unavailable("redis " + addr.str() + ": " + error_reply);
  }
  return internal_error("redis " + addr.str() + ": " + error_reply);
}

std::unique_ptr<RedisConn> RedisConn::open(const RedisAddr& addr) {
  std::unique_ptr<RedisConn> c(new RedisConn(addr));
  c->ctx_ = redisConnectNonBlock(addr.host.c_str(), addr.port);
  if (c->ctx_ == nullptr) {
    c->fail("cannot allocate a connection");
  } else if (c->ctx_->err != 0) {
    c->fail(std::string("connect: ") + c->ctx_->errstr);
  }
  return c;
}

RedisConn::~RedisConn() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

void RedisConn::fail(const std::string& what) {
  if (error_.is_ok()) error_ = unavailable("redis " + addr_.str() + ": " + what);
}

Status RedisConn::send(const RedisArgv& argv) {
  if (broken()) return error_;
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (n < 0 || cmd == nullptr) return internal_error("redis: cannot format command");
  out_.append(cmd, static_cast<size_t>(n));
  redisFreeCommand(cmd);
  return Status::ok();
}

short RedisConn::poll_events() const {
  if (connecting_) return POLLOUT;
  return static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT));
}

void RedisConn::on_events(short revents) {
  if (broken() || revents == 0) return;
  if (connecting_) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(ctx_->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
    if ((revents & POLLOUT) == 0) return;
    connecting_ = false;
  }
  if (!out_.empty() && (revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
    ssize_t n = ::send(ctx_->fd, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return fail(std::string("write: ") + std::strerror(errno));
    }
  }
  if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
    if (redisBufferRead(ctx_) != REDIS_OK) return fail(ctx_->errstr);
  }
}

std::optional<RedisValue> RedisConn::take_reply() {
  if (broken()) return std::nullopt;
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
    fail(std::string("protocol error: ") + ctx_->errstr);
    return std::nullopt;
  }
  if (raw == nullptr) return std::nullopt;
  RedisValue v = convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return v;
}

Result<RedisValue> RedisConn::command(const RedisArgv& argv, SteadyTime deadline) {
  RedisConn* self = this;
  return std::move(redis_exchange({&self, 1}, {&argv, 1}, deadline).front());
}

Result<std::optional<RedisValue>> RedisConn::next_push(SteadyTime deadline) {
  while (true) {
    if (auto v = take_reply()) return std::optional<RedisValue>(std::move(*v));
    if (broken()) return error_;
    const int timeout = ms_left(deadline);
    if (timeout == 0) return std::optional<RedisValue>();
    pollfd p{ctx_->fd, poll_events(), 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) return unavailable("redis " + addr_.str() + ": poll failed");
    if (n > 0) on_events(p.revents);
  }
}

std::vector<Result<RedisValue>> redis_exchange(std::span<RedisConn* const> conns,
                                               std::span<const RedisArgv> argvs,
                                               SteadyTime deadline) {
  const size_t n = conns.size();
  std::vector<Result<RedisValue>> results(n, Result<RedisValue>(unavailable("redis: not sent")));
  std::vector<bool> done(n, false);
  for (size_t i = 0; i < n; ++i) {
    Status s = conns[i]->send(argvs[i]);
    if (!s.is_ok()) {
      results[i] = s;
      done[i] = true;
    }
  }
  std::vector<pollfd> fds;
  std::vector<size_t> which;
  while (true) {
    fds.clear();
    which.clear();
    for (size_t i = 0; i < n; ++i) {
      if (done[i]) continue;
      RedisConn& c = *conns[i];
      if (auto v = c.take_reply()) {
        if (v->type == RedisValue::Type::kError) {
          results[i] = redis_error_status(c.addr(), v->str);
        } else {
          results[i] = std::move(*v);
        }
        done[i] = true;
      } else if (c.broken()) {
        results[i] = c.error();
        done[i] = true;
      } else {
        fds.push_back(pollfd{c.ctx_->fd, c.poll_events(), 0});
        which.push_back(i);
      }
    }
    if (fds.empty()) break;
    const int timeout = ms_left(deadline);
    if (timeout == 0) {
      for (size_t i : which) {
        conns[i]->fail(conns[i]->connecting_ ? "connect timed out"
                                             : "timed out waiting for a reply");
        results[i] = conns[i]->error();
      }
      break;
    }
    int ready = ::poll(fds.data(), fds.size(), timeout);
    if (ready < 0 && errno != EINTR) {
      for (size_t i : which) {
        conns[i]->fail(std::string("poll: ") + std::strerror(errno));
        results[i] = conns[i]->error();
      }
      break;
    }
    for (size_t k = 0; ready > 0 && k < fds.size(); ++k) conns[which[k]]->on_events(fds[k].revents);
  }
  return results;
}

std::unique_ptr<RedisConn> RedisPool::checkout() {
  {
    std::lock_guard lk(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return RedisConn::open(addr_);
}

void RedisPool::checkin(std::unique_ptr<RedisConn> conn) {
  if (!conn) return;
  std::lock_guard lk(mu_);
  if (conn->broken()) {
    // The server probably went away (or restarted): the idle connections are dead too, and
    // dropping them now saves one failed call per connection later.
    idle_.clear();
    return;
  }
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

Result<RedisValue> RedisPool::command(const RedisArgv& argv) {
  auto c = checkout();
  auto r = c->command(argv, std::chrono::steady_clock::now() + timeout_);
  checkin(std::move(c));
  return r;
}

Result<std::vector<RedisValue>> RedisConn::pipeline(std::span<const RedisArgv> argvs,
                                                    SteadyTime deadline) {
  for (const auto& argv : argvs) {
    Status s = send(argv);
    if (!s.is_ok()) {
      // A half-queued pipeline would misalign replies: never reuse this connection.
      fail(s.message());
      return error_;
    }
  }
  std::vector<RedisValue> replies;
  replies.reserve(argvs.size());
  while (replies.size() < argvs.size()) {
    if (auto v = take_reply()) {
      replies.push_back(std::move(*v));
      continue;
    }
    if (broken()) return error_;
    const int timeout = ms_left(deadline);
    if (timeout == 0) {
      fail(connecting_ ? "connect timed out" : "timed out waiting for a reply");
      return error_;
    }
    pollfd p{ctx_->fd, poll_events(), 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      fail(std::string("poll: ") + std::strerror(errno));
      return error_;
    }
    if (n > 0) on_events(p.revents);
  }
  return replies;
}

std::string RedisScript::sha() const {
  std::lock_guard lk(mu_);
  return sha_;
}

void RedisScript::set_sha(const std::string& sha) const {
  std::lock_guard lk(mu_);
  sha_ = sha;
}

namespace {

bool is_noscript(const RedisValue& v) {
  return v.type == RedisValue::Type::kError && v.str.starts_with("NOSCRIPT");
}

// SCRIPT LOAD for each distinct script of `calls` selected by `which`, pipelined.
Status load_scripts(RedisConn& conn, std::span<const ScriptCall> calls,
                    const std::vector<size_t>& which, SteadyTime deadline) {
  std::vector<const RedisScript*> scripts;
  for (size_t i : which) {
    if (std::find(scripts.begin(), scripts.end(), calls[i].script) == scripts.end())
      scripts.push_back(calls[i].script);
  }
  std::vector<RedisArgv> argvs;
  for (const auto* s : scripts) argvs.push_back({"SCRIPT", "LOAD", s->body()});
  auto replies = conn.pipeline(argvs, deadline);
  if (!replies.is_ok()) return replies.status();
  for (size_t k = 0; k < scripts.size(); ++k) {
    const RedisValue& v = (*replies)[k];
    if (v.type == RedisValue::Type::kError) return redis_error_status(conn.addr(), v.str);
    if (!v.is_str())
      return internal_error("redis " + conn.addr().str() + ": bad SCRIPT LOAD reply");
    scripts[k]->set_sha(v.str);
  }
  return Status::ok();
}

// EVALSHA for the calls selected by `which`, pipelined; replies land in out[which[k]].
Status eval_calls(RedisConn& conn, std::span<const ScriptCall> calls,
                  const std::vector<size_t>& which, std::vector<RedisValue>& out,
                  SteadyTime deadline) {
  std::vector<RedisArgv> argvs;
  argvs.reserve(which.size());
  for (size_t i : which) {
    const ScriptCall& c = calls[i];
    RedisArgv argv{"EVALSHA", c.script->sha(), std::to_string(c.keys.size())};
    argv.insert(argv.end(), c.keys.begin(), c.keys.end());
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    argvs.push_back(std::move(argv));
  }
  auto replies = conn.pipeline(argvs, deadline);
  if (!replies.is_ok()) return replies.status();
  for (size_t k = 0; k < which.size(); ++k) out[which[k]] = std::move((*replies)[k]);
  return Status::ok();
}

}  // namespace

Result<std::vector<RedisValue>> run_scripts(RedisConn& conn, std::span<const ScriptCall> calls,
                                            SteadyTime deadline) {
  std::vector<size_t> all(calls.size()), unloaded;
  for (size_t i = 0; i < calls.size(); ++i) {
    all[i] = i;
    if (calls[i].script->sha().empty()) unloaded.push_back(i);
  }
  if (!unloaded.empty()) {
    if (Status s = load_scripts(conn, calls, unloaded, deadline); !s.is_ok()) return s;
  }
  std::vector<RedisValue> out(calls.size());
  if (Status s = eval_calls(conn, calls, all, out, deadline); !s.is_ok()) return s;
  // NOSCRIPT means the script did not run, so running it again cannot apply it twice.
  std::vector<size_t> retry;
  for (size_t i = 0; i < out.size(); ++i) {
    if (is_noscript(out[i])) retry.push_back(i);
  }
  if (!retry.empty()) {
    if (Status s = load_scripts(conn, calls, retry, deadline); !s.is_ok()) return s;
    if (Status s = eval_calls(conn, calls, retry, out, deadline); !s.is_ok()) return s;
  }
  return out;
}

}  // namespace sd::redis
