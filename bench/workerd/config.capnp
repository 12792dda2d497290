# workerd config for the benchmark peer: the api.md rate-limit, lock and
# session routes as SQLite-backed Durable Objects stored on local disk.
#
#   npx workerd serve config.capnp \
#     --socket-addr http=127.0.0.1:8787 --directory-path storage=/tmp/do-data
#
# The storage directory must exist. Without the overrides it listens on
# 127.0.0.1:8787 and stores objects in ./data.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "storage", disk = (path = "data", writable = true)),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
  ],
);

const worker :Workerd.Worker = (
  compatibilityDate = "2025-11-01",
  modules = [
    (name = "worker.js", esModule = embed "src/worker.js"),
    (name = "http.js", esModule = embed "src/http.js"),
    (name = "ratelimit.js", esModule = embed "src/ratelimit.js"),
    (name = "lock.js", esModule = embed "src/lock.js"),
    (name = "sessions.js", esModule = embed "src/sessions.js"),
  ],
  # enableSql: the SQLite storage API, as new_sqlite_classes does on Cloudflare.
  durableObjectNamespaces = [
    (className = "RateLimiter", uniqueKey = "durable-bench-ratelimiter", enableSql = true),
    (className = "Lock", uniqueKey = "durable-bench-lock", enableSql = true),
    (className = "SessionShard", uniqueKey = "durable-bench-sessions", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "storage"),
  bindings = [
    (name = "RATELIMIT", durableObjectNamespace = "RateLimiter"),
    (name = "LOCKS", durableObjectNamespace = "Lock"),
    (name = "SESSIONS", durableObjectNamespace = "SessionShard"),
    # Set to require "Authorization: Bearer <TOKEN>" on /v1 routes.
    (name = "TOKEN", text = ""),
  ],
);
