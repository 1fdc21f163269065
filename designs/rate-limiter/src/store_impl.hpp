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
  // decide_async(): worker threads, each sending whatever calls are queued (up to
  // batch_max_items items) as one pipeline on its own connection. Two let one batch fill while
  // the other is on the wire.
  size_t batch_workers = 2;
  size_t batch_max_items = 512;
};
std::unique_ptr<Store> make_redis_store(RedisStoreConfig config, const StoreOptions& options);
// Pipelines sent by a redis store's decide_async() workers so far (tests: batching happens);
// nullopt for another store.
std::optional<uint64_t> redis_store_batches(const Store& store);

}  // namespace sd::ratelimit::detail
