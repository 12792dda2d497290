// HTTP conventions of api.md: JSON responses, the error shape, strict body
// decoding and path-parameter checks.

export const MAX_BODY = 1 << 20;

export class ApiError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const invalid = (message) => new ApiError(400, "invalid_argument", message);
export const notFound = (message) => new ApiError(404, "not_found", message);

export function json(status, body, headers = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return new Response(text, { status, headers: { "content-type": "application/json", ...headers } });
}

export function errorResponse(err) {
  return json(err.status, { error: { code: err.code, message: err.message } }, err.headers);
}

// A result of a Durable Object method: {status, body?, text?, headers?}.
export function resultResponse(r) {
  if (r.status === 204) return new Response(null, { status: 204 });
  return json(r.status, r.text ?? r.body, r.headers);
}

const encoder = new TextEncoder();
export const byteLength = (s) => encoder.encode(s).length;

// readBody returns the JSON object in the request body ({} when empty),
// allowing only the given fields.
export async function readBody(request, fields) {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY) throw new ApiError(413, "payload_too_large", `body over ${MAX_BODY} bytes`);
  const buf = await request.arrayBuffer();
  if (buf.byteLength > MAX_BODY) throw new ApiError(413, "payload_too_large", `body over ${MAX_BODY} bytes`);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw invalid("body is not valid UTF-8");
  }
  if (text.trim() === "") return {};
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(`body: ${e.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw invalid("body must be a JSON object");
  for (const k of Object.keys(v)) {
    if (!fields.includes(k)) throw invalid(`unknown field "${k}"`);
  }
  return v;
}

// int returns body[field] (or def when absent; def undefined = required),
// checked to be an integer in lo..hi.
export function int(body, field, def, lo, hi) {
  const v = body[field];
  if (v === undefined) {
    if (def === undefined) throw invalid(`${field} is required`);
    return def;
  }
  if (typeof v !== "number" || !Number.isInteger(v)) throw invalid(`${field} must be an integer`);
  if (v < lo || v > hi) throw invalid(`${field} must be in ${lo}..${hi}, got ${v}`);
  return v;
}

export function str(body, field, required) {
  const v = body[field];
  if (v === undefined) {
    if (required) throw invalid(`${field} is required`);
    return undefined;
  }
  if (typeof v !== "string") throw invalid(`${field} must be a string`);
  return v;
}

// param decodes and checks a path parameter: 1–256 bytes of valid UTF-8
// without control characters.
export function param(raw) {
  let v;
  try {
    v = decodeURIComponent(raw);
  } catch {
    throw invalid("bad path parameter: invalid percent-encoding or UTF-8");
  }
  checkName("path parameter", v);
  return v;
}

export function checkName(what, v) {
  const n = byteLength(v);
  if (n < 1 || n > 256) throw invalid(`${what} must be 1–256 bytes, got ${n}`);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) throw invalid(`${what} contains a control character`);
  if (/\p{Surrogate}/u.test(v)) throw invalid(`${what} is not valid UTF-8`);
}

export function base64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
  try {
    const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((s.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

// newToken returns 128 random bits, base64url without padding (22 chars).
export function newToken() {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}
