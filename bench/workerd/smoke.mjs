// Smoke test of the workerd peer: starts `workerd serve config.capnp` on a
// free loopback port with a fresh storage directory, checks every route it
// implements over real HTTP, kills it with SIGKILL and checks that state
// survived the restart.
//
//   node --test smoke.mjs      (or: npm run smoke)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "node_modules", ".bin", "workerd");
const dataDir = mkdtempSync(join(tmpdir(), "workerd-smoke-"));
let port;
let proc;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function start() {
  proc = spawn(bin, ["serve", "config.capnp", "--socket-addr", `http=127.0.0.1:${port}`, "--directory-path", `storage=${dataDir}`], {
    cwd: here,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.status === 200) return;
    } catch {}
    if (Date.now() > deadline) throw new Error("workerd did not answer /healthz within 30s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop() {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await exited;
}

async function call(method, path, body) {
  const init = { method };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const r = await fetch(`http://127.0.0.1:${port}${path}`, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null, type: r.headers.get("content-type") };
}

before(async () => {
  port = await freePort();
  await start();
});

after(async () => {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("sliding log", async () => {
  const b = { limit: 3, window_ms: 60000 };
  for (const remaining of [2, 1, 0]) {
    const r = await call("POST", "/v1/ratelimit/k/check", b);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { allowed: true, remaining, reset_ms: 60000 });
  }
  const d = await call("POST", "/v1/ratelimit/k/check", b);
  assert.equal(d.status, 429);
  assert.equal(d.body.error.code, "rate_limited");
  assert.ok(d.body.retry_after_ms >= 1 && d.body.retry_after_ms <= 60000);
  assert.equal(d.headers.get("retry-after"), String(Math.ceil(d.body.retry_after_ms / 1000)));
  const more = await call("POST", "/v1/ratelimit/k/check", { limit: 5, window_ms: 60000, cost: 2 });
  assert.equal(more.body.remaining, 0);
});

test("sliding log is atomic", async () => {
  const rs = await Promise.all(Array.from({ length: 100 }, () => call("POST", "/v1/ratelimit/race/check", { limit: 30, window_ms: 60000 })));
  assert.equal(rs.filter((r) => r.status === 200).length, 30);
  assert.equal(rs.filter((r) => r.status === 429).length, 70);
});

test("token bucket", async () => {
  const b = { limit: 3, window_ms: 60000, algorithm: "token_bucket" };
  for (const remaining of [2, 1, 0]) {
    const r = await call("POST", "/v1/ratelimit/tb/check", b);
    assert.equal(r.status, 200);
    assert.equal(r.body.remaining, remaining);
  }
  const d = await call("POST", "/v1/ratelimit/tb/check", b);
  assert.equal(d.status, 429);
  assert.ok(d.body.retry_after_ms > 19900 && d.body.retry_after_ms <= 20000, `retry_after_ms ${d.body.retry_after_ms}`);
});

test("errors follow api.md", async () => {
  const cases = [
    ["POST", "/v1/ratelimit/k/check", { window_ms: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/k/check", { limit: 1, window_ms: 1, x: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/k/check", { limit: "1", window_ms: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/k/check", "{", 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/k/check", { limit: 2, window_ms: 1, cost: 3 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/" + "a".repeat(257) + "/check", { limit: 1, window_ms: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/a%01/check", { limit: 1, window_ms: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/a%ff/check", { limit: 1, window_ms: 1 }, 400, "invalid_argument"],
    ["POST", "/v1/ratelimit/k/check", JSON.stringify({ limit: 1, window_ms: 1, algorithm: "x".repeat(1 << 20) }), 413, "payload_too_large"],
    ["GET", "/v1/ratelimit/k/check", undefined, 405, "method_not_allowed"],
    ["GET", "/v1/nothing", undefined, 404, "not_found"],
    ["GET", "/v1/sessions/not-a-session-id", undefined, 404, "not_found"],
    ["POST", "/v1/sessions", {}, 400, "invalid_argument"],
    ["POST", "/v1/locks/l/renew", {}, 400, "invalid_argument"],
  ];
  for (const [method, path, body, status, code] of cases) {
    const r = await call(method, path, body);
    assert.equal(r.status, status, `${method} ${path.slice(0, 40)}`);
    assert.equal(r.body.error.code, code);
    assert.equal(r.type, "application/json");
  }
  const r = await call("GET", "/v1/sessions");
  assert.equal(r.headers.get("allow"), "POST");
});

test("locks", async () => {
  const g = await call("POST", "/v1/locks/l/acquire", { ttl_ms: 60000, owner: "w1" });
  assert.equal(g.status, 200);
  assert.equal(g.body.fencing, 1);
  assert.ok(g.body.token.length >= 22);
  assert.deepEqual((await call("GET", "/v1/locks/l")).body, { held: true, fencing: 1, expires_at_ms: g.body.expires_at_ms, owner: "w1" });
  assert.equal((await call("POST", "/v1/locks/l/acquire", {})).body.error.code, "lock_held");
  assert.equal((await call("POST", "/v1/locks/l/renew", { token: "x" })).body.error.code, "not_owner");
  assert.equal((await call("POST", "/v1/locks/l/renew", { token: g.body.token })).status, 200);
  // A waiter gets the lock when it is released.
  const waiting = call("POST", "/v1/locks/l/acquire", { wait_ms: 10000 });
  assert.deepEqual((await call("POST", "/v1/locks/l/release", { token: g.body.token })).body, { released: true });
  const w = await waiting;
  assert.equal(w.status, 200);
  assert.equal(w.body.fencing, 2);
  assert.equal((await call("POST", "/v1/locks/l/release", { token: g.body.token })).body.error.code, "not_owner");
  // A waiter gets an expired lock.
  await call("POST", "/v1/locks/l/release", { token: w.body.token });
  await call("POST", "/v1/locks/e/acquire", { ttl_ms: 200 });
  const after = await call("POST", "/v1/locks/e/acquire", { wait_ms: 10000 });
  assert.equal(after.status, 200);
  assert.equal(after.body.fencing, 2);
});

test("sessions", async () => {
  const c = await call("POST", "/v1/sessions", { user_id: "alice", data: { cart: [1, 2] }, ttl_ms: 60000 });
  assert.equal(c.status, 201);
  assert.ok(c.body.id.length >= 22);
  const g = await call("GET", `/v1/sessions/${c.body.id}`);
  assert.equal(g.status, 200);
  assert.deepEqual(g.body.data, { cart: [1, 2] });
  assert.equal(g.body.created_at_ms + 60000, g.body.expires_at_ms);
  assert.deepEqual((await call("PATCH", `/v1/sessions/${c.body.id}`, { ttl_ms: 120000 })).body.data, { cart: [1, 2] });
  assert.equal((await call("PATCH", `/v1/sessions/${c.body.id}`, { data: null })).body.data, null);
  await call("POST", "/v1/sessions", { user_id: "alice" });
  assert.equal((await call("GET", "/v1/users/alice/sessions")).body.sessions.length, 2);
  assert.equal((await call("DELETE", `/v1/sessions/${c.body.id}`)).status, 204);
  assert.equal((await call("GET", `/v1/sessions/${c.body.id}`)).status, 404);
  assert.equal((await call("DELETE", `/v1/sessions/${c.body.id}`)).status, 404);
  assert.deepEqual((await call("DELETE", "/v1/users/alice/sessions")).body, { revoked: 1 });
  assert.equal((await call("GET", "/v1/users/alice/sessions")).body.sessions.length, 0);
});

test("state survives SIGKILL and restart", async () => {
  const g = await call("POST", "/v1/locks/durable/acquire", { ttl_ms: 600000 });
  const s = await call("POST", "/v1/sessions", { user_id: "bob", data: "kept" });
  for (let i = 0; i < 2; i++) await call("POST", "/v1/ratelimit/d/check", { limit: 2, window_ms: 600000 });
  await stop();
  await start();
  const st = await call("GET", "/v1/locks/durable");
  assert.equal(st.body.held, true);
  assert.equal(st.body.fencing, g.body.fencing);
  assert.equal((await call("GET", `/v1/sessions/${s.body.id}`)).body.data, "kept");
  assert.equal((await call("POST", "/v1/ratelimit/d/check", { limit: 2, window_ms: 600000 })).status, 429);
});
