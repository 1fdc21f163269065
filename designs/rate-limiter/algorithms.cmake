# Rate-limiting algorithms (sans-io, per-key state in memory), their benchmark and the
# sliding-window accuracy report. Included from designs/rate-limiter/CMakeLists.txt.

sd_add_library(NAME sd_ratelimit_algorithms ALIAS sd::ratelimit_algorithms
  SOURCES
    src/algorithm.cpp
    src/token_bucket.cpp
    src/leaky_bucket.cpp
    src/leaky_queue.cpp
    src/fixed_window.cpp
    src/sliding_log.cpp
    src/sliding_window.cpp
    src/gcra.cpp
  DEPS sd::base)

# Counter-vs-log comparison as JSON (README numbers): ratelimit-accuracy --seed N
add_executable(ratelimit-accuracy bench/accuracy_main.cpp)
target_include_directories(ratelimit-accuracy PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
target_link_libraries(ratelimit-accuracy PRIVATE sd::ratelimit_algorithms)
sd_set_warnings(ratelimit-accuracy)

sd_add_bench(NAME ratelimit_algorithms_bench
  SOURCES bench/algorithms_bench.cpp
  DEPS sd::ratelimit_algorithms)
