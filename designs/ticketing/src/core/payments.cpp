// SimulatedPayments: a stand-in for a remote card processor with Stripe-style manual capture.
//
// Ledger: its own SQLite file (WAL, synchronous=NORMAL: a kill -9 of the service loses nothing
// that was acknowledged), table charges(id, reference, amount_cents, state, created_ms,
// updated_ms). A partial UNIQUE index allows at most one *live* charge (authorized or captured)
// per reference, so the ledger itself refuses a double authorization for one hold.
//
// authorize(reference, amount, card):
//   1. sleeps the simulated network latency (uniform in [min, max] ms, outside every lock, so
//      concurrent calls overlap as they would against a remote provider);
//   2. validates the card (see validate_card) and the amount;
//   3. if the reference already has an authorized charge, returns that charge unchanged: a retried
//      pay (e.g. after the "timeout after success" card, or a crash between authorize and
//      confirm) never authorizes twice. The same reference with a different amount is
//      kConflict "payment_reference_conflict"; a reference whose charge was already captured is
//      kConflict "already_captured". A voided or refunded charge does not block a new one;
//   4. the test cards' fixed outcomes, else one uniform draw u from the seeded RNG:
//      u < error_rate/2 -> recorded, then kUnavailable (timeout after success);
//      u < error_rate -> kUnavailable, nothing recorded; u < error_rate + decline_rate -> declined;
//      otherwise approved. So decline_rate and error_rate are fractions of all fresh
//      authorizations of ordinary cards.
// capture / void / refund follow authorized -> captured | voided, captured -> refunded; repeating
// the call that produced the current state is ok, any other transition kConflict, unknown ids
// kNotFound. Only authorize() fails at random; charges() (audits) has no simulated latency.

#include "sd/ticketing/payments.hpp"

#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "sd/base/ids.hpp"

namespace sd::ticketing {
namespace {

using storage::Db;

constexpr std::string_view kCardDeclined = "4000000000000002";
constexpr std::string_view kCardError = "4000000000000119";
constexpr std::string_view kCardTimeoutAfterSuccess = "4000000000009995";

const std::vector<std::string>& ledger_migrations() {
  static const std::vector<std::string> kSteps = {
      // 1: the ledger
      R"sql(
        CREATE TABLE charges(
          id TEXT PRIMARY KEY NOT NULL,
          reference TEXT NOT NULL,
          amount_cents INTEGER NOT NULL CHECK(amount_cents >= 0),
          state TEXT NOT NULL CHECK(state IN ('authorized','captured','voided','refunded')),
          created_ms INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL
        );
        CREATE INDEX charges_by_reference ON charges(reference);
        CREATE UNIQUE INDEX charges_one_live_per_reference ON charges(reference)
          WHERE state IN ('authorized','captured');
      )sql",
  };
  return kSteps;
}

Result<ChargeState> parse_charge_state(std::string_view s) {
  if (s == "authorized") return ChargeState::kAuthorized;
  if (s == "captured") return ChargeState::kCaptured;
  if (s == "voided") return ChargeState::kVoided;
  if (s == "refunded") return ChargeState::kRefunded;
  return internal_error("payments: unknown charge state '" + std::string(s) + "' in the ledger");
}

Status declined(std::string text) {
  return {Code::kFailedPrecondition, "card_declined: " + std::move(text)};
}

// Digits of a card number with ASCII spaces and dashes removed ("4242 4242-4242 4242" is
// accepted as typed); nullopt if any other character appears.
std::optional<std::string> normalize_card(const std::string& card) {
  std::string digits;
  digits.reserve(card.size());
  for (char c : card) {
    if (c == ' ' || c == '-') continue;
    if (c < '0' || c > '9') return std::nullopt;
    digits.push_back(c);
  }
  return digits;
}

bool luhn_ok(std::string_view digits) {
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

Charge read_charge(const storage::Statement& s) {
  // Columns: id, reference, amount_cents, state, created_ms (state parsed by the caller).
  Charge c;
  c.id = s.column_text(0);
  c.reference = s.column_text(1);
  c.amount_cents = s.column_int64(2);
  c.created_ms = s.column_int64(4);
  return c;
}

}  // namespace

std::string_view charge_state_name(ChargeState s) {
  switch (s) {
    case ChargeState::kAuthorized:
      return "authorized";
    case ChargeState::kCaptured:
      return "captured";
    case ChargeState::kVoided:
      return "voided";
    case ChargeState::kRefunded:
      return "refunded";
  }
  return "unknown";
}

Status validate_card(const std::string& card) {
  auto digits = normalize_card(card);
  if (!digits) {
    return invalid_argument("invalid_card: card number may contain only digits, spaces and dashes");
  }
  if (digits->size() < 12 || digits->size() > 19) {
    return invalid_argument("invalid_card: card number must have 12 to 19 digits");
  }
  if (!luhn_ok(*digits)) return invalid_argument("invalid_card: card number fails the Luhn check");
  return Status::ok();
}

struct SimulatedPayments::Impl {
  PaymentOptions options;
  NowMs now;
  RandomIdGenerator ids;  // charge ids are unguessable (and never collide across reopens)

  std::mutex rng_mu;
  std::mt19937_64 rng;  // guarded by rng_mu

  std::mutex mu;
  Db db;  // guarded by mu

  Impl(PaymentOptions o, NowMs n, Db d)
      : options(std::move(o)), now(std::move(n)), rng(options.seed), db(std::move(d)) {}

  double uniform01() {
    std::lock_guard lock(rng_mu);
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  }

  void simulate_latency() {
    if (options.max_latency_ms <= 0) return;
    int64_t ms = 0;
    {
      std::lock_guard lock(rng_mu);
      ms = std::uniform_int_distribution<int64_t>(options.min_latency_ms,
                                                  options.max_latency_ms)(rng);
    }
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }

  // The charge for id, or kNotFound. Caller holds mu.
  Result<Charge> load(const std::string& id) {
    auto st = db.cached(
        "SELECT id, reference, amount_cents, state, created_ms FROM charges WHERE id = ?1");
    if (!st) return st.status();
    SD_RETURN_IF_ERROR((*st)->bind_text(1, id));
    auto row = (*st)->step();
    if (!row) return row.status();
    if (!*row) return not_found("charge_not_found: no charge " + id);
    Charge c = read_charge(**st);
    auto state = parse_charge_state((*st)->column_text_view(3));
    if (!state) return state.status();
    c.state = *state;
    return c;
  }

  // The live (authorized or captured) charge of a reference, if any. Caller holds mu.
  Result<std::optional<Charge>> live_charge(const std::string& reference) {
    auto st = db.cached(
        "SELECT id, reference, amount_cents, state, created_ms FROM charges "
        "WHERE reference = ?1 AND state IN ('authorized','captured')");
    if (!st) return st.status();
    SD_RETURN_IF_ERROR((*st)->bind_text(1, reference));
    auto row = (*st)->step();
    if (!row) return row.status();
    if (!*row) return std::optional<Charge>{};
    Charge c = read_charge(**st);
    auto state = parse_charge_state((*st)->column_text_view(3));
    if (!state) return state.status();
    c.state = *state;
    return std::optional<Charge>(std::move(c));
  }

  Status insert(const Charge& c) {
    auto st = db.cached(
        "INSERT INTO charges(id, reference, amount_cents, state, created_ms, updated_ms) "
        "VALUES(?1, ?2, ?3, 'authorized', ?4, ?4)");
    if (!st) return st.status();
    SD_RETURN_IF_ERROR((*st)->bind_text(1, c.id));
    SD_RETURN_IF_ERROR((*st)->bind_text(2, c.reference));
    SD_RETURN_IF_ERROR((*st)->bind_int64(3, c.amount_cents));
    SD_RETURN_IF_ERROR((*st)->bind_int64(4, c.created_ms));
    return (*st)->run();
  }

  Result<Charge> authorize(const std::string& reference, int64_t amount_cents,
                           const std::string& card) {
    simulate_latency();
    SD_RETURN_IF_ERROR(validate_card(card));
    if (reference.empty()) return invalid_argument("invalid_reference: reference is required");
    if (amount_cents < 0) {
      return invalid_argument("invalid_amount: amount must not be negative (got " +
                              std::to_string(amount_cents) + ")");
    }
    const std::string digits = normalize_card(card).value_or("");

    std::lock_guard lock(mu);
    std::optional<Charge> result;
    Status failure;
    Status st = storage::with_transaction(db, [&]() -> Status {
      auto live = live_charge(reference);
      if (!live) return live.status();
      if (*live) {
        const Charge& c = **live;
        if (c.state == ChargeState::kCaptured) {
          failure =
              conflict("already_captured: reference " + reference + " was charged by " + c.id);
          return Status::ok();
        }
        if (c.amount_cents != amount_cents) {
          failure = conflict("payment_reference_conflict: reference " + reference +
                             " has a live authorization " + c.id + " of " +
                             std::to_string(c.amount_cents) + " cents, not " +
                             std::to_string(amount_cents));
          return Status::ok();
        }
        result = c;  // the retry of an authorization that already happened
        return Status::ok();
      }

      bool record = false;
      if (digits == kCardDeclined) {
        failure = declined("the card was declined");
      } else if (digits == kCardError) {
        failure = unavailable(
            "payment_unavailable: the payment provider failed; nothing was "
            "charged, try again");
      } else if (digits == kCardTimeoutAfterSuccess) {
        record = true;
        failure = unavailable(
            "payment_unavailable: the payment provider timed out; the "
            "authorization may have gone through, retry with the same "
            "reference");
      } else {
        const double u = uniform01();
        const double err = options.error_rate;
        if (u < err / 2) {
          record = true;
          failure = unavailable(
              "payment_unavailable: the payment provider timed out; the "
              "authorization may have gone through, retry with the same "
              "reference");
        } else if (u < err) {
          failure = unavailable(
              "payment_unavailable: the payment provider failed; nothing was "
              "charged, try again");
        } else if (u < err + options.decline_rate) {
          failure = declined("the card was declined (insufficient funds)");
        } else {
          record = true;
        }
      }
      if (!record) return Status::ok();
      Charge c;
      c.id = "pay_" + ids.next();
      c.reference = reference;
      c.amount_cents = amount_cents;
      c.state = ChargeState::kAuthorized;
      c.created_ms = now();
      SD_RETURN_IF_ERROR(insert(c));
      if (failure.is_ok()) result = std::move(c);
      return Status::ok();
    });
    if (!st) return unavailable("payment_unavailable: ledger write failed: " + st.message());
    if (!failure.is_ok()) return failure;
    if (!result) return internal_error("payments: authorization produced no charge");
    return std::move(*result);
  }

  // Moves a charge from `from` to `to`; `to` already reached is ok; anything else kConflict.
  Status transition(const std::string& id, ChargeState from, ChargeState to,
                    std::string_view verb) {
    simulate_latency();
    std::lock_guard lock(mu);
    return storage::with_transaction(db, [&]() -> Status {
      auto c = load(id);
      if (!c) return c.status();
      if (c->state == to) return Status::ok();
      if (c->state != from) {
        return conflict("charge_state_conflict: cannot " + std::string(verb) + " " + id +
                        ": it is " + std::string(charge_state_name(c->state)));
      }
      auto st = db.cached("UPDATE charges SET state = ?2, updated_ms = ?3 WHERE id = ?1");
      if (!st) return st.status();
      SD_RETURN_IF_ERROR((*st)->bind_text(1, id));
      SD_RETURN_IF_ERROR((*st)->bind_text(2, charge_state_name(to)));
      SD_RETURN_IF_ERROR((*st)->bind_int64(3, now()));
      return (*st)->run();
    });
  }

  Result<std::vector<Charge>> all() {
    std::lock_guard lock(mu);
    auto st = db.cached(
        "SELECT id, reference, amount_cents, state, created_ms FROM charges ORDER BY rowid");
    if (!st) return st.status();
    std::vector<Charge> out;
    for (;;) {
      auto row = (*st)->step();
      if (!row) return row.status();
      if (!*row) break;
      Charge c = read_charge(**st);
      auto state = parse_charge_state((*st)->column_text_view(3));
      if (!state) return state.status();
      c.state = *state;
      out.push_back(std::move(c));
    }
    return out;
  }
};

Result<std::unique_ptr<SimulatedPayments>> SimulatedPayments::open(PaymentOptions options,
                                                                   NowMs now) {
  if (options.ledger_path.empty() || options.ledger_path == ":memory:") {
    return invalid_argument("invalid_argument: payments: ledger_path must name a file");
  }
  if (options.min_latency_ms < 0 || options.max_latency_ms < options.min_latency_ms) {
    return invalid_argument(
        "invalid_argument: payments: need 0 <= min_latency_ms <= "
        "max_latency_ms");
  }
  if (!(options.decline_rate >= 0 && options.decline_rate <= 1 && options.error_rate >= 0 &&
        options.error_rate <= 1 && options.decline_rate + options.error_rate <= 1)) {
    return invalid_argument(
        "invalid_argument: payments: decline_rate and error_rate must be in "
        "[0, 1] with a sum of at most 1");
  }
  if (!now) return invalid_argument("invalid_argument: payments: a clock (NowMs) is required");
  auto db = Db::open(options.ledger_path);
  if (!db) return db.status();
  SD_RETURN_IF_ERROR(storage::migrate(*db, ledger_migrations()));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(now), std::move(*db));
  return std::unique_ptr<SimulatedPayments>(new SimulatedPayments(std::move(impl)));
}

SimulatedPayments::SimulatedPayments(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimulatedPayments::~SimulatedPayments() = default;

Result<Charge> SimulatedPayments::authorize(const std::string& reference, int64_t amount_cents,
                                            const std::string& card) {
  return impl_->authorize(reference, amount_cents, card);
}

Status SimulatedPayments::capture(const std::string& charge_id) {
  return impl_->transition(charge_id, ChargeState::kAuthorized, ChargeState::kCaptured, "capture");
}

Status SimulatedPayments::void_authorization(const std::string& charge_id) {
  return impl_->transition(charge_id, ChargeState::kAuthorized, ChargeState::kVoided, "void");
}

Status SimulatedPayments::refund(const std::string& charge_id) {
  return impl_->transition(charge_id, ChargeState::kCaptured, ChargeState::kRefunded, "refund");
}

Result<std::vector<Charge>> SimulatedPayments::charges() {
  return impl_->all();
}

}  // namespace sd::ticketing
