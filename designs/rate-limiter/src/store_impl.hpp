#pragma once
// Private to the store library: the two Store implementations behind open_store().

#include <memory>
#include <optional>
#include <string>

#include "sd/base/clock.hpp"
#include "sd/ratelimit/store.hpp"
#include "sd/redis/conn.hpp"

namespace sd::ratelimit::detail {

std::unique_ptr<Store> make_memory_store(const StoreOptions& options);
// Keys held by a memory store (tests of maintain()); nullopt for another store.
std::optional<size_t> memory_store_key_count(const Store& store);

struct RedisStoreConfig {
  redis::RedisAddr addr;
  Duration timeout{50};  // per decide() call, connect included
  std::string prefix = "rl:";
};
std::unique_ptr<Store> make_redis_store(RedisStoreConfig config, const StoreOptions& options);

}  // namespace sd::ratelimit::detail
