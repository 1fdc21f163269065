#pragma once
// PaymentProvider: authorize / capture / void / refund, Stripe-style manual capture. The service
// authorizes before it confirms an order, captures after the order committed, and voids when the
// order could not be confirmed — so money is never taken without a ticket.
//
// SimulatedPayments stands in for a remote provider: its ledger is its own SQLite file (it
// survives a kill -9 of the service, as a real provider's would), with configurable latency,
// declines and errors from a seeded RNG. Test cards (any other 12–19 digit number is a valid card):
//   4242424242424242  approved (subject to the random decline/error rates)
//   4000000000000002  always declined
//   4000000000000119  always a provider error (kUnavailable), nothing recorded
//   4000000000009995  "timeout after success": the authorization IS recorded, but the caller sees
//                     kUnavailable (the ambiguous case reconcile() exists for)

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/storage/sqlite.hpp"
#include "sd/ticketing/model.hpp"

namespace sd::ticketing {

enum class ChargeState { kAuthorized, kCaptured, kVoided, kRefunded };
std::string_view charge_state_name(ChargeState s);

struct Charge {
  std::string id;         // "pay_<hex>"
  std::string reference;  // the caller's reference (the hold id); one live authorization per ref
  int64_t amount_cents = 0;
  ChargeState state = ChargeState::kAuthorized;
  int64_t created_ms = 0;
};

// Thread-safe. Declines are kFailedPrecondition with message "card_declined"; provider outages
// are kUnavailable; unknown ids kNotFound; a state change that is not allowed (capture a voided
// charge) kConflict. capture/void/refund are idempotent on the same target state.
class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  virtual Result<Charge> authorize(const std::string& reference, int64_t amount_cents,
                                   const std::string& card) = 0;
  virtual Status capture(const std::string& charge_id) = 0;
  virtual Status void_authorization(const std::string& charge_id) = 0;
  virtual Status refund(const std::string& charge_id) = 0;
  virtual Result<std::vector<Charge>> charges() = 0;  // the whole ledger (audits, reconcile)
};

struct PaymentOptions {
  std::string ledger_path;     // SQLite file for the ledger; required
  int64_t min_latency_ms = 0;  // each call sleeps uniformly in [min, max]
  int64_t max_latency_ms = 0;
  double decline_rate = 0;  // fraction of approved-card authorizations declined at random
  double error_rate = 0;    // fraction failing with kUnavailable (half of them after recording)
  uint64_t seed = 1;
};

class SimulatedPayments final : public PaymentProvider {
 public:
  static Result<std::unique_ptr<SimulatedPayments>> open(PaymentOptions options, NowMs now);
  ~SimulatedPayments() override;
  Result<Charge> authorize(const std::string& reference, int64_t amount_cents,
                           const std::string& card) override;
  Status capture(const std::string& charge_id) override;
  Status void_authorization(const std::string& charge_id) override;
  Status refund(const std::string& charge_id) override;
  Result<std::vector<Charge>> charges() override;

 private:
  struct Impl;
  explicit SimulatedPayments(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Card number check (12–19 digits, Luhn; ASCII spaces and dashes between digits are ignored, so
// "4242 4242 4242 4242" is accepted as typed); kInvalidArgument "invalid_card: ..." otherwise.
Status validate_card(const std::string& card);

}  // namespace sd::ticketing
