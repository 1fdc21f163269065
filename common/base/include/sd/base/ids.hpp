#pragma once
// Identifiers: 128-bit random values rendered as 32 lowercase hex characters.

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace sd {

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual std::string next() = 0;  // a fresh 32-hex-char id; thread-safe
};

// Unguessable ids from the OS CSPRNG (getrandom).
class RandomIdGenerator final : public IdGenerator {
 public:
  std::string next() override;
};

// Reproducible ids for tests: same seed, same sequence. Not unguessable.
class SeededIdGenerator final : public IdGenerator {
 public:
  explicit SeededIdGenerator(uint64_t seed) : rng_(seed) {}
  std::string next() override;

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;  // guarded by mu_
};

// True if s looks like an id produced above (32 lowercase hex chars).
bool is_valid_id(std::string_view s);

std::string to_hex(const unsigned char* data, size_t n);

}  // namespace sd
