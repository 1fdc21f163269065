#pragma once
// Private to the client library: a blocking connection to one Redis server (hiredis underneath).
