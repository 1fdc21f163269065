#include "sd/metrics/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sd::metrics {

void Counter::inc(double v) {
  v_.fetch_add(v, std::memory_order_relaxed);
}
double Counter::value() const {
  return v_.load(std::memory_order_relaxed);
}

void Gauge::set(double v) {
  v_.store(v, std::memory_order_relaxed);
}
void Gauge::add(double v) {
  v_.fetch_add(v, std::memory_order_relaxed);
}
double Gauge::value() const {
  return v_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  // +Inf is implicit; an explicit one would render twice.
  while (!bounds_.empty() && std::isinf(bounds_.back())) bounds_.pop_back();
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double v) {
  // Binary search outside the lock; bounds_ is immutable after construction.
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard<std::mutex> lk(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s.cumulative = counts_;
    s.sum = sum_;
    s.count = count_;
  }
  uint64_t acc = 0;
  for (auto& c : s.cumulative) {
    acc += c;
    c = acc;
  }
  return s;
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

namespace {

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    out.append(buf, res.ptr);
  }
}

void append_uint(std::string& out, uint64_t v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// Label values escape backslash, double quote and newline (exposition format 0.0.4).
void append_label_value(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text escapes only backslash and newline.
void append_help(std::string& out, const std::string& v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Rendered label set without braces: a="x",b="y". Also the series key inside a family.
std::string label_key(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    append_label_value(out, v);
    out += '"';
  }
  return out;
}

void append_series(std::string& out, const std::string& name, const char* suffix,
                   const std::string& key, const std::string& extra = {}) {
  out += name;
  out += suffix;
  if (!key.empty() || !extra.empty()) {
    out += '{';
    out += key;
    if (!key.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
}

template <class Map, class Make>
auto& get_or_create(Map& m, const std::string& key, Make make) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, make()).first;
  return *it->second;
}
}  // namespace

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  Family& f = families_[name];
  if (f.type.empty()) {
    f.type = "counter";
    f.help = help;
  } else if (f.type != "counter") {
    throw std::logic_error("metric " + name + " already registered as " + f.type);
  }
  return get_or_create(f.counters, label_key(labels), [] { return std::make_unique<Counter>(); });
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  Family& f = families_[name];
  if (f.type.empty()) {
    f.type = "gauge";
    f.help = help;
  } else if (f.type != "gauge") {
    throw std::logic_error("metric " + name + " already registered as " + f.type);
  }
  return get_or_create(f.gauges, label_key(labels), [] { return std::make_unique<Gauge>(); });
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const Labels& labels, std::vector<double> bounds) {
  std::lock_guard<std::mutex> lk(mu_);
  Family& f = families_[name];
  if (f.type.empty()) {
    f.type = "histogram";
    f.help = help;
  } else if (f.type != "histogram") {
    throw std::logic_error("metric " + name + " already registered as " + f.type);
  }
  return get_or_create(f.histograms, label_key(labels),
                       [&] { return std::make_unique<Histogram>(std::move(bounds)); });
}

std::string Registry::render() const {
  std::string out;
  out.reserve(4096);
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, f.help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += f.type;
    out += '\n';
    for (const auto& [key, c] : f.counters) {
      append_series(out, name, "", key);
      append_number(out, c->value());
      out += '\n';
    }
    for (const auto& [key, g] : f.gauges) {
      append_series(out, name, "", key);
      append_number(out, g->value());
      out += '\n';
    }
    for (const auto& [key, h] : f.histograms) {
      Histogram::Snapshot s = h->snapshot();
      for (size_t i = 0; i <= s.bounds.size(); ++i) {
        std::string le = "le=\"";
        if (i < s.bounds.size()) {
          append_number(le, s.bounds[i]);
        } else {
          le += "+Inf";
        }
        le += '"';
        append_series(out, name, "_bucket", key, le);
        append_uint(out, s.cumulative[i]);
        out += '\n';
      }
      append_series(out, name, "_sum", key);
      append_number(out, s.sum);
      out += '\n';
      append_series(out, name, "_count", key);
      append_uint(out, s.count);
      out += '\n';
    }
  }
  return out;
}

}  // namespace sd::metrics
