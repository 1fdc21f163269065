// IdempotencyStore: Stripe-style idempotency keys in the ticketing database (table
// idempotency_keys, primary key (customer, key)).
//
// begin() runs one write transaction on TicketDb's writer connection (serialized by its mutex and
// BEGIN IMMEDIATE), so two requests racing with the same new key see exactly one kProceed: the
// second finds the first's in_progress row. Decisions, in order:
//   no row, or a row older than ttl_ms (expired, not purged yet)  -> insert in_progress, kProceed
//   stored request != request (byte for byte)                      -> kMismatch
//   state done                                                     -> kReplay (status, body)
//   in_progress younger than in_progress_timeout_ms                -> kInProgress
//   in_progress older (its process died mid-request)               -> take over, kProceed
// A takeover restarts the row's clock (created_ms = now), so the new owner gets the full timeout
// and the key's TTL counts from then. finish() stores the response of the in_progress row (any
// status below 500 except 429), or deletes the row for 5xx and 429 so the client's retry runs the
// request again. finish() on a row that is already done keeps the first response (a request that
// was taken over may finish twice); on a missing row it is kNotFound.
// Keys: 1..max_key_bytes bytes of visible ASCII (0x21..0x7e): no spaces or control characters, so
// what an HTTP header carries (after trimming) is the key.

#include "sd/ticketing/idempotency.hpp"

#include <optional>
#include <utility>

namespace sd::ticketing {
namespace {

using storage::Db;

constexpr const char* kSelect =
    "SELECT request, state, status, body, created_ms FROM idempotency_keys "
    "WHERE customer = ?1 AND key = ?2";
constexpr const char* kUpsertInProgress =
    "INSERT INTO idempotency_keys(customer, key, request, state, status, body, created_ms) "
    "VALUES(?1, ?2, ?3, 'in_progress', NULL, NULL, ?4) "
    "ON CONFLICT(customer, key) DO UPDATE SET request = excluded.request, state = 'in_progress', "
    "status = NULL, body = NULL, created_ms = excluded.created_ms";
constexpr const char* kTakeOver =
    "UPDATE idempotency_keys SET created_ms = ?3 WHERE customer = ?1 AND key = ?2";
constexpr const char* kStore =
    "UPDATE idempotency_keys SET state = 'done', status = ?3, body = ?4 "
    "WHERE customer = ?1 AND key = ?2 AND state = 'in_progress'";
constexpr const char* kFree =
    "DELETE FROM idempotency_keys WHERE customer = ?1 AND key = ?2 AND state = 'in_progress'";
constexpr const char* kExists = "SELECT 1 FROM idempotency_keys WHERE customer = ?1 AND key = ?2";
constexpr const char* kPurge = "DELETE FROM idempotency_keys WHERE created_ms <= ?1";

Status validate_key(const std::string& key, size_t max_bytes) {
  if (key.empty() || key.size() > max_bytes) {
    return invalid_argument("invalid_idempotency_key: a key must have 1 to " +
                            std::to_string(max_bytes) + " characters (got " +
                            std::to_string(key.size()) + ")");
  }
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return invalid_argument(
          "invalid_idempotency_key: a key may contain only visible ASCII characters");
    }
  }
  return Status::ok();
}

struct KeyRow {
  std::string request;
  bool done = false;
  int status = 0;
  std::string body;
  int64_t created_ms = 0;
};

bool retryable(int status) {
  return status >= 500 || status == 429;
}

Status bind_scope(storage::Statement& s, const std::string& customer, const std::string& key) {
  SD_RETURN_IF_ERROR(s.bind_text(1, customer));
  return s.bind_text(2, key);
}

}  // namespace

IdempotencyStore::IdempotencyStore(TicketDb& db, IdempotencyOptions options)
    : db_(db), options_(options) {}

Result<IdempotencyStore::Begin> IdempotencyStore::begin(const std::string& customer,
                                                        const std::string& key,
                                                        const std::string& request,
                                                        int64_t now_ms) {
  SD_RETURN_IF_ERROR(validate_key(key, options_.max_key_bytes));
  Begin out;
  Status st = db_.write([&](Db& db) -> Status {
    return storage::with_transaction(db, [&]() -> Status {
      std::optional<KeyRow> row;
      {
        auto sel = db.cached(kSelect);
        if (!sel) return sel.status();
        SD_RETURN_IF_ERROR(bind_scope(**sel, customer, key));
        auto found = (*sel)->step();
        if (!found) return found.status();
        if (*found) {
          row = KeyRow{(*sel)->column_text(0), (*sel)->column_text_view(1) == "done",
                       static_cast<int>((*sel)->column_int64(2)), (*sel)->column_text(3),
                       (*sel)->column_int64(4)};
        }
      }                                     // the read cursor is reset here, before any write
      const char* sql = kUpsertInProgress;  // no row, or an expired one not purged yet
      if (row && row->created_ms + options_.ttl_ms > now_ms) {
        if (row->request != request) {
          out.outcome = Outcome::kMismatch;
          return Status::ok();
        }
        if (row->done) {
          out.outcome = Outcome::kReplay;
          out.stored = StoredResponse{row->status, std::move(row->body)};
          return Status::ok();
        }
        if (now_ms - row->created_ms < options_.in_progress_timeout_ms) {
          out.outcome = Outcome::kInProgress;
          return Status::ok();
        }
        sql = kTakeOver;  // abandoned by a request that never finished
      }
      auto w = db.cached(sql);
      if (!w) return w.status();
      SD_RETURN_IF_ERROR(bind_scope(**w, customer, key));
      if (sql == kTakeOver) {
        SD_RETURN_IF_ERROR((*w)->bind_int64(3, now_ms));
      } else {
        SD_RETURN_IF_ERROR((*w)->bind_text(3, request));
        SD_RETURN_IF_ERROR((*w)->bind_int64(4, now_ms));
      }
      SD_RETURN_IF_ERROR((*w)->run());
      out.outcome = Outcome::kProceed;
      return Status::ok();
    });
  });
  if (!st) return st;
  return out;
}

Status IdempotencyStore::finish(const std::string& customer, const std::string& key,
                                const StoredResponse& r, int64_t now_ms) {
  (void)now_ms;
  SD_RETURN_IF_ERROR(validate_key(key, options_.max_key_bytes));
  return db_.write([&](Db& db) -> Status {
    return storage::with_transaction(db, [&]() -> Status {
      {
        auto st = db.cached(retryable(r.status) ? kFree : kStore);
        if (!st) return st.status();
        SD_RETURN_IF_ERROR(bind_scope(**st, customer, key));
        if (!retryable(r.status)) {
          SD_RETURN_IF_ERROR((*st)->bind_int64(3, r.status));
          SD_RETURN_IF_ERROR((*st)->bind_text(4, r.body));
        }
        SD_RETURN_IF_ERROR((*st)->run());
      }
      if (db.changes() > 0) return Status::ok();
      auto ex = db.cached(kExists);
      if (!ex) return ex.status();
      SD_RETURN_IF_ERROR(bind_scope(**ex, customer, key));
      auto row = (*ex)->step();
      if (!row) return row.status();
      if (*row) return Status::ok();  // already done: the first response stays
      return not_found("idempotency_key_not_found: no request in progress with this key");
    });
  });
}

Result<int> IdempotencyStore::purge(int64_t now_ms) {
  int purged = 0;
  Status st = db_.write([&](Db& db) -> Status {
    return storage::with_transaction(db, [&]() -> Status {
      auto del = db.cached(kPurge);
      if (!del) return del.status();
      SD_RETURN_IF_ERROR((*del)->bind_int64(1, now_ms - options_.ttl_ms));
      SD_RETURN_IF_ERROR((*del)->run());
      purged = static_cast<int>(db.changes());
      return Status::ok();
    });
  });
  if (!st) return st;
  return purged;
}

}  // namespace sd::ticketing
