#include "sd/base/ids.hpp"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>

namespace sd {

std::string to_hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

std::string RandomIdGenerator::next() {
  unsigned char buf[16];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");  // fatal: no entropy source
    }
    got += static_cast<size_t>(n);
  }
  return to_hex(buf, sizeof buf);
}

std::string SeededIdGenerator::next() {
  unsigned char buf[16];
  {
    std::lock_guard lock(mu_);
    uint64_t a = rng_(), b = rng_();
    for (int i = 0; i < 8; ++i) {
      buf[i] = static_cast<unsigned char>(a >> (8 * i));
      buf[8 + i] = static_cast<unsigned char>(b >> (8 * i));
    }
  }
  return to_hex(buf, sizeof buf);
}

bool is_valid_id(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace sd
