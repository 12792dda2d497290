// SessionShard: one Durable Object per shard of sessions. A session's shard
// is chosen from its user_id, so a user's sessions live in one shard and
// listing or revoking them is one call; the shard number is the first byte
// of the session id. An alarm deletes expired rows.

import { DurableObject } from "cloudflare:workers";

export class SessionShard extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL, data TEXT NOT NULL,
        created INTEGER NOT NULL, exp INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, exp);
      CREATE INDEX IF NOT EXISTS sessions_exp ON sessions (exp);`);
    this.alarmAt = null;
    ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  live(id, now) {
    return this.sql.exec("SELECT id, user_id, data, created, exp FROM sessions WHERE id = ? AND exp > ?", id, now).toArray()[0];
  }

  create(id, userId, data, ttl) {
    const now = Date.now();
    const exp = now + ttl;
    this.sql.exec("INSERT INTO sessions (id, user_id, data, created, exp) VALUES (?, ?, ?, ?, ?)", id, userId, data, now, exp);
    this.ensureAlarm(exp);
    return { status: 201, body: { id, user_id: userId, expires_at_ms: exp } };
  }

  get(id) {
    const row = this.live(id, Date.now());
    return row ? ok(row) : notFound();
  }

  patch(id, hasData, data, ttl) {
    const now = Date.now();
    const row = this.live(id, now);
    if (!row) return notFound();
    if (hasData) row.data = data;
    if (ttl !== undefined) row.exp = now + ttl;
    this.sql.exec("UPDATE sessions SET data = ?, exp = ? WHERE id = ?", row.data, row.exp, id);
    this.ensureAlarm(row.exp);
    return ok(row);
  }

  delete(id) {
    const row = this.live(id, Date.now());
    this.sql.exec("DELETE FROM sessions WHERE id = ?", id);
    return row ? { status: 204 } : notFound();
  }

  list(userId) {
    const sessions = this.sql
      .exec("SELECT id, created, exp FROM sessions WHERE user_id = ? AND exp > ? ORDER BY created, id", userId, Date.now())
      .toArray()
      .map((r) => ({ id: r.id, created_at_ms: r.created, expires_at_ms: r.exp }));
    return { status: 200, body: { sessions } };
  }

  revoke(userId) {
    const now = Date.now();
    const revoked = this.sql.exec("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ? AND exp > ?", userId, now).one().n;
    this.sql.exec("DELETE FROM sessions WHERE user_id = ?", userId);
    return { status: 200, body: { revoked } };
  }

  ensureAlarm(exp) {
    if (this.alarmAt === null || exp < this.alarmAt) {
      this.alarmAt = exp;
      this.ctx.storage.setAlarm(exp);
    }
  }

  async alarm() {
    const now = Date.now();
    this.alarmAt = null;
    this.sql.exec("DELETE FROM sessions WHERE exp <= ?", now);
    const next = this.sql.exec("SELECT MIN(exp) AS t FROM sessions").one().t;
    if (next !== null) this.ensureAlarm(next);
  }
}

// ok formats a session without parsing its stored JSON data again.
function ok(row) {
  const text = `{"id":${JSON.stringify(row.id)},"user_id":${JSON.stringify(row.user_id)},"data":${row.data},"created_at_ms":${row.created},"expires_at_ms":${row.exp}}`;
  return { status: 200, text };
}

const notFound = () => ({ status: 404, body: { error: { code: "not_found", message: "no such session" } } });
