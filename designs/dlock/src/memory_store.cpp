// memory:// — no persistence. The core's in-memory state is the only copy; a restart starts
// empty. Only the token reservation is remembered, so a second LockCore recovering from the same
// Store object (same process) still never reuses a token.

#include <algorithm>
#include <memory>
#include <variant>

#include "sd/dlock/store.hpp"

namespace sd::dlock {
namespace {

class MemoryStore final : public Store {
 public:
  Result<Snapshot> load() override {
    Snapshot s;
    s.token_reserved = reserved_;
    return s;
  }

  Status apply(const std::vector<Mutation>& batch) override {
    for (const Mutation& m : batch) {
      if (const auto* r = std::get_if<ReserveTokens>(&m)) reserved_ = std::max(reserved_, r->upto);
    }
    return Status::ok();
  }

  std::string describe() const override { return "memory"; }

  // Nothing to make durable, so nothing is ever pending: group mode changes nothing here.
  Status set_group_commit(bool /*on*/) override { return Status::ok(); }

 private:
  Token reserved_ = 0;
};

}  // namespace

std::unique_ptr<Store> make_memory_store() {
  return std::make_unique<MemoryStore>();
}

}  // namespace sd::dlock
