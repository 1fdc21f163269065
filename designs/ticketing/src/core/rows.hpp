#pragma once
// Row readers shared by the catalog (db.cpp) and the strategies: the text columns' enums and a
// hold with its seats.

#include <string>
#include <string_view>

#include "sd/base/status.hpp"
#include "sd/storage/sqlite.hpp"
#include "sd/ticketing/model.hpp"

namespace sd::ticketing::detail {

SeatState parse_seat_state(std::string_view s);    // unknown text reads as available
HoldStatus parse_hold_status(std::string_view s);  // unknown text reads as active

// Reads a hold and its seats (sorted) on any connection. kNotFound "not_found: hold X".
Result<Hold> read_hold(storage::Db& db, const std::string& hold_id);

}  // namespace sd::ticketing::detail
