// ratelimit-accuracy: the sliding-window counter against the exact sliding log on seeded traces,
// as JSON (one object per traffic shape).
//   ratelimit-accuracy [--seed N] [--requests N] [--limit R] [--period-ms P]

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "accuracy.hpp"

int main(int argc, char** argv) {
  uint64_t seed = 1;
  size_t requests = 200'000;
  int64_t limit = 100;
  int64_t period_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr || !arg.starts_with("--")) {
      std::cerr << "usage: ratelimit-accuracy [--seed N] [--requests N] [--limit R] "
                   "[--period-ms P]\n";
      return 2;
    }
    const unsigned long long v = std::strtoull(value, nullptr, 10);
    if (arg == "--seed")
      seed = v;
    else if (arg == "--requests")
      requests = v;
    else if (arg == "--limit")
      limit = static_cast<int64_t>(v);
    else if (arg == "--period-ms")
      period_ms = static_cast<int64_t>(v);
    else {
      std::cerr << "unknown option " << arg << "\n";
      return 2;
    }
    ++i;
  }
  if (limit <= 0 || period_ms <= 0 || requests == 0) {
    std::cerr << "--limit, --period-ms and --requests must be > 0\n";
    return 2;
  }
  const int64_t period_us = period_ms * 1000;
  std::cout << "{\"seed\":" << seed << ",\"limit\":" << limit << ",\"period_us\":" << period_us
            << ",\"shapes\":[";
  const auto& names = sd::ratelimit::accuracy::shapes();
  for (size_t i = 0; i < names.size(); ++i) {
    auto r = sd::ratelimit::accuracy::compare(names[i], seed, limit, period_us, requests);
    std::cout << (i ? ",\n  " : "\n  ") << sd::ratelimit::accuracy::to_json(r);
  }
  std::cout << "\n]}\n";
  return 0;
}
