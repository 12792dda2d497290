// RateLimiter: one Durable Object per rate-limit key.
//
// sliding_log keeps every allowed request (seq, ts, cost) in SQLite and a
// mirror of the live ones in memory, with their summed cost, so a check is
// one INSERT. Entries older than the largest window in use are dropped from
// memory at once and from SQLite by an alarm (at most once a second), so an
// idle key's storage returns to empty. token_bucket is GCRA kept relative to
// its last update (debt in ms), one row.

import { DurableObject } from "cloudflare:workers";

const PRUNE_EVERY_MS = 1000;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, cost INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v REAL NOT NULL);
`;

export class RateLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    this.ts = [];
    this.cost = [];
    this.head = 0; // first live entry of ts/cost
    this.sum = 0; // summed cost of live entries
    this.seq = 0;
    for (const r of this.sql.exec("SELECT seq, ts, cost FROM log ORDER BY seq")) {
      this.ts.push(r.ts);
      this.cost.push(r.cost);
      this.sum += r.cost;
      this.seq = r.seq;
    }
    const meta = new Map();
    for (const r of this.sql.exec("SELECT k, v FROM meta")) meta.set(r.k, r.v);
    this.maxw = meta.get("maxw") ?? 0;
    this.tb = meta.has("tb_t") ? { d: meta.get("tb_d"), t: meta.get("tb_t") } : null;
    this.alarmAt = null;
    ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  now() {
    const last = this.ts.length > this.head ? this.ts[this.ts.length - 1] : 0;
    return Math.max(Date.now(), last);
  }

  setMeta(k, v) {
    this.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", k, v);
  }

  // dropBefore forgets entries with ts <= cutoff from memory.
  dropBefore(cutoff) {
    while (this.head < this.ts.length && this.ts[this.head] <= cutoff) {
      this.sum -= this.cost[this.head];
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.ts.length) {
      this.ts = this.ts.slice(this.head);
      this.cost = this.cost.slice(this.head);
      this.head = 0;
    }
  }

  // firstAfter returns the index of the first live entry with ts > t.
  firstAfter(t) {
    let lo = this.head;
    let hi = this.ts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  check(limit, window, cost, algorithm) {
    return algorithm === "token_bucket" ? this.bucket(limit, window, cost) : this.sliding(limit, window, cost);
  }

  sliding(limit, window, cost) {
    const now = this.now();
    if (window > this.maxw) {
      this.maxw = window;
      this.setMeta("maxw", window);
    }
    this.dropBefore(now - this.maxw);
    let used = this.sum;
    const first = this.firstAfter(now - window);
    if (window < this.maxw) {
      used = 0;
      for (let i = first; i < this.ts.length; i++) used += this.cost[i];
    }
    if (used + cost <= limit) {
      this.seq++;
      this.sql.exec("INSERT INTO log (seq, ts, cost) VALUES (?, ?, ?)", this.seq, now, cost);
      this.ts.push(now);
      this.cost.push(cost);
      this.sum += cost;
      this.ensureAlarm(now + Math.min(this.maxw, PRUNE_EVERY_MS));
      return { status: 200, body: { allowed: true, remaining: limit - used - cost, reset_ms: window } };
    }
    // Denied: the oldest entries whose leaving frees enough room.
    const excess = used + cost - limit;
    let freed = 0;
    let retry = window;
    for (let i = first; i < this.ts.length; i++) {
      freed += this.cost[i];
      if (freed >= excess) {
        retry = Math.max(this.ts[i] + window - now, 1);
        break;
      }
    }
    return denied(retry);
  }

  bucket(limit, window, cost) {
    const now = Date.now();
    let d = 0;
    if (this.tb) d = Math.max(this.tb.d - Math.max(now - this.tb.t, 0), 0);
    const interval = window / limit;
    const nd = d + cost * interval;
    const eps = window * 1e-9;
    if (nd <= window + eps) {
      this.tb = { d: nd, t: now };
      this.setMeta("tb_d", nd);
      this.setMeta("tb_t", now);
      this.ensureAlarm(now + Math.ceil(nd));
      return {
        status: 200,
        body: { allowed: true, remaining: Math.floor((window - nd) / interval + 1e-9), reset_ms: Math.ceil(nd - eps) },
      };
    }
    return denied(Math.max(Math.ceil(nd - window - eps), 1));
  }

  ensureAlarm(at) {
    if (this.alarmAt === null) {
      this.alarmAt = at;
      this.ctx.storage.setAlarm(at);
    }
  }

  // alarm deletes what has left every window and goes back to sleep, or
  // empties storage once nothing is live.
  async alarm() {
    const now = Date.now();
    this.alarmAt = null;
    this.dropBefore(now - this.maxw);
    this.sql.exec("DELETE FROM log WHERE ts <= ?", now - this.maxw);
    const tbLive = this.tb && this.tb.t + this.tb.d > now;
    if (this.head < this.ts.length) {
      this.ensureAlarm(Math.max(this.ts[this.head] + this.maxw, now + PRUNE_EVERY_MS));
    } else if (tbLive) {
      this.ensureAlarm(Math.ceil(this.tb.t + this.tb.d));
    } else {
      this.sql.exec("DELETE FROM log");
      this.sql.exec("DELETE FROM meta");
      this.ts = [];
      this.cost = [];
      this.head = 0;
      this.sum = 0;
      this.maxw = 0;
      this.tb = null;
    }
  }
}

function denied(retry) {
  return {
    status: 429,
    headers: { "retry-after": String(Math.max(Math.ceil(retry / 1000), 1)) },
    body: {
      allowed: false,
      remaining: 0,
      retry_after_ms: retry,
      error: { code: "rate_limited", message: "rate limit exceeded" },
    },
  };
}
