// Strategy names and the factory.

#include "sd/ticketing/strategy.hpp"

#include "strategy_common.hpp"

namespace sd::ticketing {

std::string_view strategy_name(StrategyKind k) {
  switch (k) {
    case StrategyKind::kDlock:
      return "dlock";
    case StrategyKind::kConditional:
      return "conditional";
    case StrategyKind::kOptimistic:
      return "optimistic";
  }
  return "dlock";
}

Result<StrategyKind> parse_strategy(std::string_view name) {
  if (name == "dlock") return StrategyKind::kDlock;
  if (name == "conditional") return StrategyKind::kConditional;
  if (name == "optimistic") return StrategyKind::kOptimistic;
  return invalid_argument("invalid_argument: unknown strategy \"" + std::string(name) +
                          "\" (choose dlock, conditional or optimistic)");
}

Result<std::vector<std::string>> SeatStrategy::release_all(const std::vector<std::string>& hold_ids,
                                                           HoldStatus to, int64_t now_ms,
                                                           std::vector<SeatChange>& changes) {
  std::vector<std::string> released;
  Status first_error;
  for (const auto& id : hold_ids) {
    Status s = release(id, to, now_ms, changes);
    if (s) {
      released.push_back(id);
    } else if (!(s.code() == Code::kConflict && s.message().rfind("hold_not_active", 0) == 0) &&
               first_error.is_ok()) {
      first_error = s;
    }
  }
  if (released.empty() && !first_error.is_ok()) return first_error;
  return released;
}

Result<std::unique_ptr<SeatStrategy>> make_strategy(StrategyKind kind, TicketDb& db,
                                                    std::shared_ptr<dlock::Backend> lock_backend,
                                                    StrategyOptions options) {
  if (options.optimistic_retries < 0) {
    return invalid_argument("invalid_argument: optimistic_retries must be >= 0");
  }
  if (options.lock_wait_ms < 0)
    return invalid_argument("invalid_argument: lock_wait_ms must be >= 0");
  switch (kind) {
    case StrategyKind::kDlock:
      return detail::make_dlock_strategy(db, std::move(lock_backend), options);
    case StrategyKind::kConditional:
      return detail::make_conditional_strategy(db, options);
    case StrategyKind::kOptimistic:
      return detail::make_optimistic_strategy(db, options);
  }
  return invalid_argument("invalid_argument: unknown strategy");
}

}  // namespace sd::ticketing
