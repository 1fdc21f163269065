# dlock client library (backends by URI, Session/Mutex/...), the `dlock` CLI, and their unit tests.

sd_add_library(NAME sd_dlock_client ALIAS sd::dlock
  SOURCES
    src/uri.cpp
    src/backend_local.cpp
    src/backend_http.cpp
    src/redis_scripts.cpp
    src/backend_redis.cpp
    src/backend_redlock.cpp
    src/backend_etcd.cpp
    src/etcd_codec.cpp
    src/etcd_transport.cpp
    src/client_session.cpp
    src/client_locks.cpp
  DEPS sd::dlock_core sd::net
  PRIVATE_DEPS sd::redis)

add_executable(dlock cli/main.cpp cli/commands.cpp cli/run.cpp)
target_include_directories(dlock PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cli)
target_link_libraries(dlock PRIVATE sd::dlock CLI11::CLI11)
sd_set_warnings(dlock)

sd_add_test(NAME dlock_client_tests
  SOURCES
    tests/client_test.cpp
    tests/client_uri_test.cpp
    tests/client_session_test.cpp
  DEPS sd::dlock sd::testing)
