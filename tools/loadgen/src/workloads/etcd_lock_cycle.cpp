// etcd-lock-cycle through etcd's v3 JSON gateway (HTTP/1.1 on the client port, etcd >= 3.4 paths).
// Keys and values are bytes, hence base64 in JSON; int64 fields (lease IDs, revisions) are JSON
// strings. The lock is the classic etcd recipe reduced to its core: a txn that creates the key
// only if it does not exist (create_revision == 0), attached to the connection's lease so a dead
// client's lock expires; release deletes the key.
//   POST /v3/lease/grant {"TTL":s}                  -> {"ID":"<int64>","TTL":"s"}
//   POST /v3/kv/txn {"compare":[{"key":K,"result":"EQUAL","target":"CREATE","createRevision":"0"}],
//                    "success":[{"requestPut":{"key":K,"value":V,"lease":"<ID>"}}]}
//                                                   -> {"succeeded":true,...}; false is omitted
//   POST /v3/kv/deleterange {"key":K}               -> {"deleted":"1",...}
//   POST /v3/lease/revoke {"ID":"<ID>"}
#include <nlohmann/json.hpp>

#include "workloads.hpp"

namespace sd::loadgen::wl {

namespace {
bool succeeded(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto it = j.find("succeeded");
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
}  // namespace

WorkloadSpec etcd_lock_cycle(const WorkloadOptions& o) {
  WorkloadSpec w =
      base_spec("etcd-lock-cycle", Protocol::kHttp, 2379, o, /*polls_on_conflict=*/true);
  int64_t ttl_s = (o.lease_ttl_ms + 999) / 1000;

  w.setup.push_back(Step{"lease-grant",
                         [ttl_s](StepContext&) {
                           return http_call(net::Method::kPost, "/v3/lease/grant",
                                            "{\"TTL\":" + std::to_string(ttl_s) + "}");
                         },
                         [](const Reply& r, StepContext& ctx) {
                           auto id = json_field(r.body, "ID");
                           if (r.status != 200 || !id)
                             return Verdict::error(http_error("lease grant", r));
                           ctx.op.set("lease", *id);
                           return Verdict::next();
                         }});

  w.op.push_back(Step{
      "txn-create",
      [](StepContext& ctx) {
        std::string k = json_escape(base64_encode(ctx.key));
        std::string v = json_escape(base64_encode(unique_token(ctx)));
        return http_call(net::Method::kPost, "/v3/kv/txn",
                         "{\"compare\":[{\"key\":" + k +
                             ",\"result\":\"EQUAL\",\"target\":\"CREATE\","
                             "\"createRevision\":\"0\"}],\"success\":[{\"requestPut\":{\"key\":" +
                             k + ",\"value\":" + v +
                             ",\"lease\":" + json_escape(ctx.conn.get("lease")) + "}}]}");
      },
      [](const Reply& r, StepContext&) {
        if (r.status != 200) return Verdict::error(http_error("txn", r));
        return succeeded(r.body) ? Verdict::next() : Verdict::conflict();
      }});

  w.op.push_back(Step{"deleterange",
                      [](StepContext& ctx) {
                        return http_call(net::Method::kPost, "/v3/kv/deleterange",
                                         "{\"key\":" + json_escape(base64_encode(ctx.key)) + "}");
                      },
                      [](const Reply& r, StepContext&) {
                        return r.status == 200 ? Verdict::ok()
                                               : Verdict::error(http_error("deleterange", r));
                      }});

  w.teardown.push_back(
      Step{"lease-revoke",
           [](StepContext& ctx) {
             return http_call(net::Method::kPost, "/v3/lease/revoke",
                              "{\"ID\":" + json_escape(ctx.conn.get("lease")) + "}");
           },
           [](const Reply& r, StepContext&) {
             return r.status == 200 ? Verdict::ok() : Verdict::error(http_error("revoke", r));
           }});
  return w;
}

}  // namespace sd::loadgen::wl
