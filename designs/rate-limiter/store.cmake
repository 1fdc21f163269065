# Rate-limit state stores by URI: memory:// (sharded in-process limiters) and redis:// (one Lua
# script per algorithm, shared by every process). Included from designs/rate-limiter/CMakeLists.txt.

sd_add_library(NAME sd_ratelimit_store ALIAS sd::ratelimit_store
  SOURCES
    src/store_uri.cpp
    src/store_memory.cpp
    src/store_redis.cpp
    src/ratelimit_scripts.cpp
  DEPS sd::ratelimit_algorithms sd::redis sd::base)
