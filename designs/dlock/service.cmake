# LockService (HTTP API v1 over LockCore), the dlockd server and the service's unit tests.
# Included from designs/dlock/CMakeLists.txt.

sd_add_library(NAME sd_dlock_service ALIAS sd::dlock_service
  SOURCES src/service.cpp src/service_http.cpp src/service_routes.cpp
  DEPS sd::dlock_core sd::net)

add_executable(dlockd server/main.cpp)
target_link_libraries(dlockd PRIVATE sd::dlock_service CLI11::CLI11)
sd_set_warnings(dlockd)

sd_add_test(NAME dlock_service_tests
  SOURCES tests/service_test.cpp tests/service_abandon_test.cpp
  DEPS sd::dlock_service sd::testing)
