// Blocking Redis connection on hiredis.
#include "redis_conn.hpp"
