// Lock: one Durable Object per lock name. The holder (token, owner, expiry)
// and the fencing counter live in one SQLite row; waiters queue in memory
// and are served first-come first-served when the holder releases or
// expires.

import { DurableObject } from "cloudflare:workers";
import { newToken } from "./http.js";

export class Lock extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS lock (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      token TEXT, owner TEXT, exp INTEGER NOT NULL, fencing INTEGER NOT NULL)`);
    const rows = this.sql.exec("SELECT token, owner, exp, fencing FROM lock").toArray();
    this.s = rows[0] ?? { token: null, owner: null, exp: 0, fencing: 0 };
    this.waiters = []; // {ttl, owner, resolve, timer}
    this.wake = null; // timer for the holder's expiry while waiters wait
  }

  held(now) {
    return this.s.token !== null && this.s.exp > now;
  }

  save() {
    const s = this.s;
    this.sql.exec(
      "INSERT OR REPLACE INTO lock (id, token, owner, exp, fencing) VALUES (1, ?, ?, ?, ?)",
      s.token, s.owner, s.exp, s.fencing,
    );
  }

  grant(ttl, owner) {
    const now = Date.now();
    this.s = { token: newToken(), owner, exp: now + ttl, fencing: this.s.fencing + 1 };
    this.save();
    return { status: 200, body: { token: this.s.token, fencing: this.s.fencing, expires_at_ms: this.s.exp } };
  }

  acquire(ttl, wait, owner) {
    if (!this.held(Date.now()) && this.waiters.length === 0) return this.grant(ttl, owner);
    if (wait === 0) return lockHeld();
    return new Promise((resolve) => {
      const w = { ttl, owner, resolve };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(lockHeld());
      }, wait);
      this.waiters.push(w);
      this.schedule();
    });
  }

  // schedule hands the lock to the first waiter if it is free, else wakes
  // up when the holder expires.
  schedule() {
    clearTimeout(this.wake);
    this.wake = null;
    if (this.waiters.length === 0) return;
    const now = Date.now();
    if (this.held(now)) {
      this.wake = setTimeout(() => this.schedule(), this.s.exp - now + 1);
      return;
    }
    const w = this.waiters.shift();
    clearTimeout(w.timer);
    w.resolve(this.grant(w.ttl, w.owner));
    this.schedule();
  }

  renew(token, ttl) {
    const now = Date.now();
    if (token !== this.s.token || !this.held(now)) return notOwner();
    this.s.exp = now + ttl;
    this.save();
    this.schedule();
    return { status: 200, body: { expires_at_ms: this.s.exp } };
  }

  release(token) {
    if (token !== this.s.token || !this.held(Date.now())) return notOwner();
    this.s = { token: null, owner: null, exp: 0, fencing: this.s.fencing };
    this.save();
    this.schedule();
    return { status: 200, body: { released: true } };
  }

  status() {
    const held = this.held(Date.now());
    return {
      status: 200,
      body: {
        held,
        fencing: this.s.fencing,
        expires_at_ms: held ? this.s.exp : null,
        owner: held ? this.s.owner : null,
      },
    };
  }
}

const lockHeld = () => ({ status: 409, body: { error: { code: "lock_held", message: "lock is held" } } });
const notOwner = () => ({ status: 409, body: { error: { code: "not_owner", message: "token does not hold the lock" } } });
