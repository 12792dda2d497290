// Front Worker: authenticates, routes the api.md rate-limit, lock and
// session paths, validates bodies, and calls the Durable Object that owns
// the key (RPC), turning its result into the HTTP answer.

import {
  ApiError, base64url, byteLength, checkName, errorResponse, fromBase64url, int, invalid, json, notFound,
  param, readBody, resultResponse, str,
} from "./http.js";

export { RateLimiter } from "./ratelimit.js";
export { Lock } from "./lock.js";
export { SessionShard } from "./sessions.js";

// SESSION_SHARDS is the number of session objects; changing it orphans
// existing sessions.
const SESSION_SHARDS = 16;
const MAX_DATA = 64 << 10;

export default {
  async fetch(request, env) {
    try {
      return await handle(request, env);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err);
      console.error(err);
      return errorResponse(new ApiError(500, "internal", "internal error"));
    }
  },
};

async function handle(request, env) {
  const url = new URL(request.url);
  const path = url.pathname;
  if (path === "/healthz") {
    if (request.method !== "GET") throw methodNotAllowed(["GET"]);
    return json(200, { status: "ok" });
  }
  if (!path.startsWith("/v1/")) throw notFound("no such route");
  if (env.TOKEN && request.headers.get("authorization") !== `Bearer ${env.TOKEN}`) {
    throw new ApiError(401, "unauthorized", "missing or wrong bearer token");
  }
  const segs = path.slice(4).split("/");
  const route = findRoute(segs);
  if (!route) throw notFound("no such route");
  const h = route.methods[request.method];
  if (!h) throw methodNotAllowed(Object.keys(route.methods));
  const params = route.params.map((i) => param(segs[i]));
  return resultResponse(await h(request, env, ...params));
}

function methodNotAllowed(allow) {
  const list = allow.join(", ");
  return new ApiError(405, "method_not_allowed", `method not allowed; allowed: ${list}`, { allow: list });
}

function findRoute(segs) {
  const [a, , c] = segs;
  if (segs.length === 3 && a === "ratelimit" && c === "check") return { params: [1], methods: { POST: rateLimitCheck } };
  if (segs.length === 3 && a === "locks" && c === "acquire") return { params: [1], methods: { POST: lockAcquire } };
  if (segs.length === 3 && a === "locks" && c === "renew") return { params: [1], methods: { POST: lockRenew } };
  if (segs.length === 3 && a === "locks" && c === "release") return { params: [1], methods: { POST: lockRelease } };
  if (segs.length === 2 && a === "locks") return { params: [1], methods: { GET: lockStatus } };
  if (segs.length === 1 && a === "sessions") return { params: [], methods: { POST: sessionCreate } };
  if (segs.length === 2 && a === "sessions") {
    return { params: [1], methods: { GET: sessionGet, PATCH: sessionPatch, DELETE: sessionDelete } };
  }
  if (segs.length === 3 && a === "users" && c === "sessions") {
    return { params: [1], methods: { GET: userSessions, DELETE: userRevoke } };
  }
  return null;
}

// Rate limits: one object per key.

async function rateLimitCheck(request, env, key) {
  const b = await readBody(request, ["limit", "window_ms", "cost", "algorithm"]);
  const limit = int(b, "limit", undefined, 1, 1e9);
  const window = int(b, "window_ms", undefined, 1, 2592000000);
  const cost = int(b, "cost", 1, 1, limit);
  const algorithm = str(b, "algorithm", false) ?? "sliding_log";
  if (algorithm !== "sliding_log" && algorithm !== "token_bucket") {
    throw invalid(`algorithm must be "sliding_log" or "token_bucket"`);
  }
  return env.RATELIMIT.get(env.RATELIMIT.idFromName(key)).check(limit, window, cost, algorithm);
}

// Locks: one object per name.

const lockStub = (env, name) => env.LOCKS.get(env.LOCKS.idFromName(name));

async function lockAcquire(request, env, name) {
  const b = await readBody(request, ["ttl_ms", "wait_ms", "owner"]);
  const ttl = int(b, "ttl_ms", 5000, 1, 3600000);
  const wait = int(b, "wait_ms", 0, 0, 60000);
  const owner = str(b, "owner", false) ?? null;
  return lockStub(env, name).acquire(ttl, wait, owner);
}

async function lockRenew(request, env, name) {
  const b = await readBody(request, ["token", "ttl_ms"]);
  const token = str(b, "token", true);
  const ttl = int(b, "ttl_ms", 5000, 1, 3600000);
  return lockStub(env, name).renew(token, ttl);
}

async function lockRelease(request, env, name) {
  const b = await readBody(request, ["token"]);
  return lockStub(env, name).release(str(b, "token", true));
}

async function lockStatus(request, env, name) {
  return lockStub(env, name).status();
}

// Sessions: SESSION_SHARDS objects; the shard is a hash of user_id and the
// first byte of the session id.

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

const shardStub = (env, shard) => env.SESSIONS.get(env.SESSIONS.idFromName(`shard-${shard}`));

// shardOf returns the shard of a session id, or throws not_found.
function shardOf(id) {
  const bytes = fromBase64url(id);
  if (!bytes || bytes.length !== 17 || bytes[0] >= SESSION_SHARDS) throw notFound("no such session");
  return bytes[0];
}

function sessionData(b) {
  if (!("data" in b)) return null;
  const text = JSON.stringify(b.data);
  if (byteLength(text) > MAX_DATA) throw invalid(`data must be at most ${MAX_DATA} bytes of JSON`);
  return text;
}

async function sessionCreate(request, env) {
  const b = await readBody(request, ["user_id", "data", "ttl_ms"]);
  const userId = str(b, "user_id", true);
  checkName("user_id", userId);
  const ttl = int(b, "ttl_ms", 86400000, 1000, 31536000000);
  const data = sessionData(b) ?? "null";
  const shard = fnv1a(userId) % SESSION_SHARDS;
  const raw = new Uint8Array(17);
  raw[0] = shard;
  crypto.getRandomValues(raw.subarray(1));
  return shardStub(env, shard).create(base64url(raw), userId, data, ttl);
}

async function sessionGet(request, env, id) {
  return shardStub(env, shardOf(id)).get(id);
}

async function sessionPatch(request, env, id) {
  const b = await readBody(request, ["data", "ttl_ms"]);
  const data = sessionData(b);
  const ttl = "ttl_ms" in b ? int(b, "ttl_ms", undefined, 1000, 31536000000) : undefined;
  return shardStub(env, shardOf(id)).patch(id, data !== null, data, ttl);
}

async function sessionDelete(request, env, id) {
  return shardStub(env, shardOf(id)).delete(id);
}

async function userSessions(request, env, userId) {
  return shardStub(env, fnv1a(userId) % SESSION_SHARDS).list(userId);
}

async function userRevoke(request, env, userId) {
  return shardStub(env, fnv1a(userId) % SESSION_SHARDS).revoke(userId);
}
