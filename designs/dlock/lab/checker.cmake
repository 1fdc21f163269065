# The checker (rules over a merged history) and the dlock-check CLI. Included from CMakeLists.txt.

target_sources(sd_dlock_lab PRIVATE
  src/checker.cpp
  src/checker_resource.cpp
  src/checker_linearizable.cpp)

target_sources(dlock_lab_tests PRIVATE
  tests/checker_test.cpp
  tests/checker_linearizable_test.cpp
  tests/checker_synthetic_test.cpp
  tests/checker_brute_test.cpp)

add_executable(dlock-check check_main.cpp)
target_link_libraries(dlock-check PRIVATE sd::dlock_lab CLI11::CLI11)
set_target_properties(dlock-check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/designs/dlock)
sd_set_warnings(dlock-check)
