# RateLimitService (HTTP API over rules, store and concurrency limiter), and the ratelimitd server.
# Included from designs/rate-limiter/CMakeLists.txt.

sd_add_library(NAME sd_ratelimit_service ALIAS sd::ratelimit
  SOURCES src/service.cpp src/service_concurrency.cpp src/service_request.cpp
          src/service_routes.cpp src/headers.cpp
  DEPS sd::ratelimit_rules sd::ratelimit_store sd::ratelimit_concurrency sd::ratelimit_algorithms
       sd::net sd::metrics)

add_executable(ratelimitd server/main.cpp)
target_link_libraries(ratelimitd PRIVATE sd::ratelimit CLI11::CLI11)
sd_set_warnings(ratelimitd)
