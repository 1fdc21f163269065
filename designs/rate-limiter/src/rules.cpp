// RuleSet: loading files and directories, and matching request descriptors to rules.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rules_parse.hpp"
#include "sd/ratelimit/rules.hpp"

namespace sd::ratelimit {
namespace fs = std::filesystem;

namespace detail {

std::vector<std::string> list_rules_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    const std::string ext = p.extension().string();
    if (name.empty() || name[0] == '.' || (ext != ".yaml" && ext != ".yml")) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;  // follows symlinks (Kubernetes ConfigMaps)
    out.push_back(p.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace detail

namespace {

Result<std::string> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return internal_error(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return internal_error(path + ": read error: " + std::strerror(errno));
  return ss.str();
}

void collect_rules(const RuleNode& n, std::vector<const RuleNode*>& out) {
  if (n.rate_limit || n.concurrency) out.push_back(&n);
  for (const auto& c : n.children) collect_rules(c, out);
}

}  // namespace

Result<std::shared_ptr<const RuleSet>> RuleSet::parse(std::string_view yaml,
                                                      std::string_view filename) {
  auto root = detail::parse_domain(yaml, filename);
  if (!root) return root.status();
  auto rs = std::make_shared<RuleSet>();
  rs->domains_.push_back(std::move(root).value());
  rs->files_.emplace_back(filename);
  return std::shared_ptr<const RuleSet>(std::move(rs));
}

Result<std::shared_ptr<const RuleSet>> RuleSet::load(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return not_found(path + ": no such rules file or directory");
  }
  std::vector<std::string> files;
  if (fs::is_directory(st)) {
    files = detail::list_rules_files(path);
    if (files.empty()) return not_found(path + ": no *.yaml or *.yml rules files in directory");
  } else {
    files.push_back(path);
  }

  auto rs = std::make_shared<RuleSet>();
  std::string errors;
  auto fail = [&](const std::string& m) { errors += (errors.empty() ? "" : "\n") + m; };
  for (const auto& f : files) {
    auto text = read_whole(f);
    if (!text) {
      fail(text.status().message());
      continue;
    }
    auto root = detail::parse_domain(*text, f);
    if (!root) {
      fail(root.status().message());
      continue;
    }
    auto dup = std::find_if(rs->domains_.begin(), rs->domains_.end(),
                            [&](const RuleNode& d) { return d.key == root->key; });
    if (dup != rs->domains_.end()) {
      fail(f + ":" + std::to_string(root->line) + ": domain: domain '" + root->key +
           "' is already defined in " + dup->file + ":" + std::to_string(dup->line));
      continue;
    }
    rs->domains_.push_back(std::move(root).value());
  }
  if (!errors.empty()) return invalid_argument(std::move(errors));
  std::sort(rs->domains_.begin(), rs->domains_.end(),
            [](const RuleNode& a, const RuleNode& b) { return a.key < b.key; });
  rs->files_ = std::move(files);
  return std::shared_ptr<const RuleSet>(std::move(rs));
}

std::optional<Match> RuleSet::match(std::string_view domain, std::span<const Entry> entries) const {
  if (entries.empty()) return std::nullopt;
  auto d = std::lower_bound(domains_.begin(), domains_.end(), domain,
                            [](const RuleNode& n, std::string_view k) { return n.key < k; });
  if (d == domains_.end() || d->key != domain) return std::nullopt;

  const RuleNode* node = &*d;
  std::string suffix;  // "|key=value" for each level matched by a value-less node
  for (const Entry& e : entries) {
    const RuleNode* exact = nullptr;
    const RuleNode* any = nullptr;
    for (const RuleNode& c : node->children) {
      if (c.key != e.key) continue;
      if (!c.value) {
        any = &c;
      } else if (*c.value == e.value) {
        exact = &c;
        break;
      }
    }
    node = exact != nullptr ? exact : any;
    if (node == nullptr) return std::nullopt;
    if (exact == nullptr) {
      suffix += '|';
      suffix += e.key;
      suffix += '=';
      detail::append_escaped(suffix, e.value, true);
    }
  }
  if (!node->rate_limit && !node->concurrency) return std::nullopt;
  return Match{node, node->id + suffix};
}

std::vector<std::string> RuleSet::domains() const {
  std::vector<std::string> out;
  out.reserve(domains_.size());
  for (const auto& d : domains_) out.push_back(d.key);
  return out;
}

std::vector<const RuleNode*> RuleSet::rules() const {
  std::vector<const RuleNode*> out;
  for (const auto& d : domains_) collect_rules(d, out);
  return out;
}

const std::vector<std::string>& RuleSet::files() const {
  return files_;
}

}  // namespace sd::ratelimit
