# Concurrency limiter ("at most N in flight") on dlock semaphores, through dlock's public client API.

sd_add_library(NAME sd_ratelimit_concurrency ALIAS sd::ratelimit_concurrency
  SOURCES src/concurrency.cpp
  DEPS sd::dlock sd::base)
