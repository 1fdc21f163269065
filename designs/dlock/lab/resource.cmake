# Fenced resource (sans-io FencedStore + HTTP routes) in the lab library, its binary
# dlock-lab-resource, and the lab client binary dlock-lab-client. Included from CMakeLists.txt.

target_sources(sd_dlock_lab PRIVATE src/fenced_store.cpp src/resource_routes.cpp)
# resource_routes.hpp exposes sd::net::Router.
target_link_libraries(sd_dlock_lab PUBLIC sd::net)

add_executable(dlock-lab-resource resource_main.cpp)
target_link_libraries(dlock-lab-resource PRIVATE sd::dlock_lab sd::net CLI11::CLI11)
set_target_properties(dlock-lab-resource PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                    ${CMAKE_BINARY_DIR}/designs/dlock)
sd_set_warnings(dlock-lab-resource)

add_executable(dlock-lab-client client_main.cpp)
target_link_libraries(dlock-lab-client PRIVATE sd::dlock_lab sd::dlock sd::net CLI11::CLI11)
set_target_properties(dlock-lab-client PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                  ${CMAKE_BINARY_DIR}/designs/dlock)
sd_set_warnings(dlock-lab-client)

target_sources(dlock_lab_tests PRIVATE tests/fenced_store_test.cpp)
