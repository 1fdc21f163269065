# The `dlock lab` experiment runner: nemesis (seeded faults), backends (servers the lab owns),
# the HTML/SVG timeline, the experiment itself, and the `lab` subcommand of the dlock CLI.
# Included from CMakeLists.txt.

target_sources(sd_dlock_lab PRIVATE
  src/nemesis.cpp
  src/timeline.cpp
  src/backends.cpp
  src/experiment.cpp
  src/experiment_run.cpp
  src/experiment_summary.cpp)
# The runner starts and faults real servers with sd::testing's process managers (Process,
# RedisServer, EtcdCluster): the same code the integration tests trust to start, kill, restart and
# always reap them. Linking the test-helper library into the lab is deliberate; the lab is a test
# harness you run by hand. TcpProxy (partitions) is in sd::net.
target_link_libraries(sd_dlock_lab PUBLIC sd::testing sd::net)

target_sources(dlock_lab_tests PRIVATE tests/nemesis_test.cpp tests/timeline_test.cpp)

# The clock-jump fault's LD_PRELOAD shim (see src/nemesis_clockshift.cpp for why not libfaketime),
# built next to dlock so that the runner finds it beside its own executable.
add_library(sd_clockshift MODULE src/nemesis_clockshift.cpp)
set_target_properties(sd_clockshift PROPERTIES
  OUTPUT_NAME sd_clockshift
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/designs/dlock
  CXX_VISIBILITY_PRESET hidden)
sd_set_warnings(sd_clockshift)
# It is preloaded into an uninstrumented redis-server: never build it with sanitizers (an ASan
# runtime must come first in the process, which a preloaded module cannot arrange).
target_compile_options(sd_clockshift PRIVATE -fno-sanitize=all)
target_link_options(sd_clockshift PRIVATE -fno-sanitize=all)

# `dlock lab` lives in the dlock CLI (client.cmake defines the target before this directory is
# added, hence the link from here). Building dlock builds everything the lab starts.
target_sources(dlock PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/../cli/lab.cpp)
target_link_libraries(dlock PRIVATE sd::dlock_lab)
add_dependencies(dlock dlock-lab-resource dlock-lab-client dlockd sd_clockshift)
