# rules: envoy-style YAML rules (validation with file:line: field errors), descriptor matching,
# and hot reload (file polling, SIGHUP).

sd_add_library(NAME sd_ratelimit_rules ALIAS sd::ratelimit_rules
  SOURCES
    src/rules.cpp
    src/rules_parse.cpp
    src/rules_watch.cpp
  DEPS sd::ratelimit_algorithms sd::base
  PRIVATE_DEPS yaml-cpp)
