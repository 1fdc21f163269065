// The conditional strategy: no locks; each seat transition is one conditional UPDATE ("... WHERE
// state = 'available' OR its hold expired") inside the claim's transaction, and a seat that does
// not match rolls the whole claim back. The database is the only arbiter (a claim for seats that
// a snapshot read already shows taken is answered without reaching the writer: precheck_claim).

#include "strategy_common.hpp"

namespace sd::ticketing::detail {
namespace {

class ConditionalStrategy final : public SeatStrategy {
 public:
  explicit ConditionalStrategy(TicketDb& db) : db_(db) {}

  StrategyKind kind() const override { return StrategyKind::kConditional; }

  Result<Hold> claim(const ClaimRequest& req, std::vector<SeatChange>& changes) override {
    Status pre = precheck_claim(db_, req.event, sorted_seats(req.seats), req.now_ms);
    if (!pre) {
      stats_.count_claim(pre);
      return pre;
    }
    GuardFailure failure;
    auto r = write_claim(db_, req, Guard{}, changes, failure);
    stats_.count_claim(r.status());
    return r;
  }

  Result<Order> confirm(const ConfirmRequest& req, std::vector<SeatChange>& changes) override {
    GuardFailure failure;
    return write_confirm(db_, req, Guard{}, changes, failure);
  }

  Status release(const std::string& hold_id, HoldStatus to, int64_t now_ms,
                 std::vector<SeatChange>& changes) override {
    GuardFailure failure;
    return write_release(db_, hold_id, to, now_ms, Guard{}, changes, failure);
  }

  Result<std::vector<std::string>> release_all(const std::vector<std::string>& hold_ids,
                                               HoldStatus to, int64_t /*now_ms*/,
                                               std::vector<SeatChange>& changes) override {
    GuardFailure failure;
    std::vector<std::string> released;
    SD_RETURN_IF_ERROR(write_release_all(db_, hold_ids, to, Guard{}, changes, failure, released));
    return released;
  }

  StrategyStats stats() const override { return stats_.snapshot(); }

 private:
  TicketDb& db_;
  StatsCounters stats_;
};

}  // namespace

std::unique_ptr<SeatStrategy> make_conditional_strategy(TicketDb& db, StrategyOptions /*options*/) {
  return std::make_unique<ConditionalStrategy>(db);
}

}  // namespace sd::ticketing::detail
