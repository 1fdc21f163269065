# Project-wide helpers: warnings, sanitizers, ccache, and one way to add libraries/tests/benchmarks.

find_program(SD_CCACHE ccache)
if(SD_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${SD_CCACHE})
endif()

function(sd_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wimplicit-fallthrough)
  # GCC 12 at -O2/-O3 reports false -Wrestrict on std::string concatenation (GCC bug 105329).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(SD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# The asan preset compiles at -O1 -g1 (ASan's recommended level; line tables suffice for its
# stack traces): about a third less compile time than RelWithDebInfo's -O2 -g, which CI pays twice.
if(SD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  # The sanitizers' instrumentation makes GCC 12 report false positives: -Wmaybe-uninitialized (in
  # Boost.Beast) and -Wmismatched-new-delete (Asio's coroutine frame allocator). The normal build
  # keeps both warnings.
  add_compile_options(-Wno-maybe-uninitialized -Wno-mismatched-new-delete)
  add_link_options(-fsanitize=address,undefined)
endif()

# sd_add_library(NAME <name> ALIAS <ns::alias> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# Public headers live in <dir>/include; implementation in <dir>/src.
function(sd_add_library)
  cmake_parse_arguments(A "" "NAME;ALIAS" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${A_NAME} STATIC ${A_SOURCES})
  add_library(${A_ALIAS} ALIAS ${A_NAME})
  target_include_directories(${A_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${A_NAME} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  sd_set_warnings(${A_NAME})
endfunction()

# sd_add_test(NAME <name> SOURCES ... DEPS ...)
# One Catch2 binary; each TEST_CASE becomes a CTest test labelled from its tags: [unit],
# [integration] (real processes) and [slow] (slow wins). Catch2 v2's discovery cannot copy tags to
# labels itself, so discover once per tag expression.
function(sd_add_test)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE sd::catch_main ${A_DEPS})
  sd_set_warnings(${A_NAME})
  foreach(spec_label "[slow]|slow;TIMEOUT 600" "[unit]~[slow]|unit;TIMEOUT 120"
                     "[integration]~[slow]|integration;TIMEOUT 300"
                     "~[unit]~[integration]~[slow]|other;TIMEOUT 300")
    string(REPLACE "|" ";" parts "${spec_label}")
    list(GET parts 0 spec)
    list(GET parts 1 label)
    list(SUBLIST parts 2 -1 props)
    # "-w NoTests": a test whose name Catch cannot match (e.g. it contains a comma) fails instead
    # of passing without running.
    catch_discover_tests(${A_NAME} TEST_SPEC "${spec}" EXTRA_ARGS -w NoTests
                         PROPERTIES LABELS ${label} ${props}
                         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  endforeach()
endfunction()

# sd_add_bench(NAME <name> SOURCES ... DEPS ...)
function(sd_add_bench)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  if(NOT SD_BUILD_BENCH)
    return()
  endif()
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE benchmark::benchmark benchmark::benchmark_main ${A_DEPS})
  sd_set_warnings(${A_NAME})
endfunction()
