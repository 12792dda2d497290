package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/durableobjects/durable"
)

// Class is the class name the shards are registered under.
const Class = "session"

// Limits and defaults (api.md, "Sessions").
const (
	DefaultShards = 16
	MaxShards     = 1 << 16 // the shard number is 2 bytes of the ID

	MaxUserID   = 256      // bytes, like a path parameter
	MaxDataSize = 64 << 10 // bytes of JSON

	DefaultTTL = 24 * time.Hour
	MinTTL     = time.Second
	MaxTTL     = 365 * 24 * time.Hour // 31,536,000,000 ms

	// idRandom is the random part of an ID, in bytes (128 bits).
	idRandom = 16
	// idBytes is an ID before encoding: 2 bytes of shard, then the random part.
	idBytes = 2 + idRandom
	// IDLen is the length of an ID: base64url of 18 bytes, no padding.
	IDLen = idBytes * 4 / 3
)

// Options configure the sessions.
type Options struct {
	// Shards is how many objects hold the sessions; DefaultShards if 0.
	// It must stay the same for the life of a data directory: a user's
	// shard is a hash of the user ID modulo Shards.
	Shards int
	// CacheBytes bounds the memory each shard spends remembering sessions
	// it has read or written, so reading them again reads no storage:
	// DefaultCacheBytes if 0, nothing if negative.
	CacheBytes int
}

// Session is a live session. Times are milliseconds since the Unix epoch.
type Session struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Data        json.RawMessage `json:"data"` // "null" when unset
	CreatedAtMS int64           `json:"created_at_ms"`
	ExpiresAtMS int64           `json:"expires_at_ms"`
}

// Info is a session as listed for its user.
type Info struct {
	ID          string `json:"id"`
	CreatedAtMS int64  `json:"created_at_ms"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
}

// CreateParams are the fields of a new session.
type CreateParams struct {
	UserID string
	// Data is any JSON value of at most MaxDataSize bytes; nil means null.
	Data json.RawMessage
	// TTL is the lifetime, MinTTL..MaxTTL in whole milliseconds; DefaultTTL if 0.
	TTL time.Duration
}

// PatchParams change a session.
type PatchParams struct {
	// Data replaces the whole value when not nil (json.RawMessage("null")
	// sets null); nil leaves it as it is.
	Data json.RawMessage
	// TTL, when not 0, moves the expiry to now + TTL (MinTTL..MaxTTL).
	TTL time.Duration
}

// Client reaches the session shards. It is safe for concurrent use.
type Client struct {
	ns     *durable.Namespace
	shards int
	stubs  []atomic.Pointer[durable.Stub]
}

// Register registers the session class on rt (before rt.Open) and returns
// its client.
func Register(rt *durable.Runtime, opts Options) (*Client, error) {
	if opts.Shards == 0 {
		opts.Shards = DefaultShards
	}
	if opts.Shards < 1 || opts.Shards > MaxShards {
		return nil, fmt.Errorf("session: Shards = %d, want 1..%d", opts.Shards, MaxShards)
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	ns, err := rt.Register(Class, func(st *durable.State) any { return newShard(st, opts.CacheBytes) })
	if err != nil {
		return nil, err
	}
	return &Client{ns: ns, shards: opts.Shards, stubs: make([]atomic.Pointer[durable.Stub], opts.Shards)}, nil
}

// Shards returns the number of shards.
func (c *Client) Shards() int { return c.shards }

// ShardName is the object name of shard i.
func ShardName(i int) string { return "shard-" + strconv.Itoa(i) }

// UserShard returns the shard holding userID's sessions among shards.
func UserShard(userID string, shards int) int {
	h := fnv.New64a()
	h.Write([]byte(userID))
	return int(h.Sum64() % uint64(shards))
}

// ParseID returns the shard number an ID names, and false if id is not
// shaped like an ID this package makes.
func ParseID(id string) (shard int, ok bool) {
	if len(id) != IDLen {
		return 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != idBytes || base64.RawURLEncoding.EncodeToString(raw) != id {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(raw)), true
}

func newID(shard int) string {
	var raw [idBytes]byte
	binary.BigEndian.PutUint16(raw[:], uint16(shard))
	rand.Read(raw[2:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// stub returns shard i's stub, made once the runtime is open.
func (c *Client) stub(i int) *durable.Stub {
	if s := c.stubs[i].Load(); s != nil {
		return s
	}
	s := c.ns.GetByName(ShardName(i))
	c.stubs[i].Store(s)
	return s
}

// stubFor returns the stub of the shard id names, or ErrNotFound for an
// ID this package did not make (or made with more shards).
func (c *Client) stubFor(id string) (*durable.Stub, error) {
	shard, ok := ParseID(id)
	if !ok || shard >= c.shards {
		return nil, ErrNotFound
	}
	return c.stub(shard), nil
}

// CheckUserID checks a user ID: 1-MaxUserID bytes of UTF-8 with no control
// characters, the rules of a path parameter (so every user ID can be
// named in /v1/users/{user_id}/sessions).
func CheckUserID(userID string) error {
	switch {
	case userID == "":
		return fmt.Errorf("%w: user_id is empty", ErrInvalid)
	case len(userID) > MaxUserID:
		return fmt.Errorf("%w: user_id is %d bytes, over %d", ErrInvalid, len(userID), MaxUserID)
	case !utf8.ValidString(userID):
		return fmt.Errorf("%w: user_id is not valid UTF-8", ErrInvalid)
	case strings.IndexFunc(userID, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: user_id contains a control character", ErrInvalid)
	}
	return nil
}

// CheckTTL checks a TTL (MinTTL..MaxTTL).
func CheckTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("%w: ttl_ms is %d, want %d..%d", ErrInvalid, ttl.Milliseconds(), MinTTL.Milliseconds(), MaxTTL.Milliseconds())
	}
	return nil
}

// compactData checks data (nil is null) and returns it compacted.
func compactData(data json.RawMessage) (json.RawMessage, error) {
	if data == nil {
		return json.RawMessage("null"), nil
	}
	if len(data) > MaxDataSize {
		return nil, fmt.Errorf("%w: data is %d bytes, over %d", ErrInvalid, len(data), MaxDataSize)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, fmt.Errorf("%w: data is not JSON: %v", ErrInvalid, err)
	}
	return b.Bytes(), nil
}

// Create starts a session for p.UserID.
func (c *Client) Create(ctx context.Context, p CreateParams) (Session, error) {
	if err := CheckUserID(p.UserID); err != nil {
		return Session{}, err
	}
	if p.TTL == 0 {
		p.TTL = DefaultTTL
	}
	if err := CheckTTL(p.TTL); err != nil {
		return Session{}, err
	}
	data, err := compactData(p.Data)
	if err != nil {
		return Session{}, err
	}
	shard := UserShard(p.UserID, c.shards)
	arg := createArg{ID: newID(shard), UserID: p.UserID, Data: data, TTLMS: p.TTL.Milliseconds()}
	return durable.Call[Session](ctx, c.stub(shard), "Create", arg)
}

// Get returns the live session id, or ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (Session, error) {
	s, err := c.stubFor(id)
	if err != nil {
		return Session{}, err
	}
	return durable.Call[Session](ctx, s, "Get", id)
}

// GetJSON is Get returning the session JSON-encoded, as the shard encoded
// it: what a server relaying the session sends, without decoding and
// encoding it again.
func (c *Client) GetJSON(ctx context.Context, id string) (json.RawMessage, error) {
	s, err := c.stubFor(id)
	if err != nil {
		return nil, err
	}
	return invokeJSON(ctx, s, "Get", id)
}

// Patch changes the live session id and returns it, or ErrNotFound.
func (c *Client) Patch(ctx context.Context, id string, p PatchParams) (Session, error) {
	s, arg, err := c.patchCall(id, p)
	if err != nil {
		return Session{}, err
	}
	return durable.Call[Session](ctx, s, "Patch", arg)
}

// PatchJSON is Patch returning the session JSON-encoded (see GetJSON).
func (c *Client) PatchJSON(ctx context.Context, id string, p PatchParams) (json.RawMessage, error) {
	s, arg, err := c.patchCall(id, p)
	if err != nil {
		return nil, err
	}
	return invokeJSON(ctx, s, "Patch", arg)
}

// invokeJSON is durable.Call returning the result as the object encoded it.
func invokeJSON(ctx context.Context, s *durable.Stub, method string, arg any) (json.RawMessage, error) {
	b, err := json.Marshal(arg)
	if err != nil {
		return nil, err
	}
	return s.Invoke(ctx, method, b)
}

// patchCall checks p and returns the stub and argument of a Patch call.
func (c *Client) patchCall(id string, p PatchParams) (*durable.Stub, patchArg, error) {
	arg := patchArg{ID: id}
	if p.Data != nil {
		data, err := compactData(p.Data)
		if err != nil {
			return nil, arg, err
		}
		arg.HasData, arg.Data = true, data
	}
	if p.TTL != 0 {
		if err := CheckTTL(p.TTL); err != nil {
			return nil, arg, err
		}
		arg.TTLMS = p.TTL.Milliseconds()
	}
	s, err := c.stubFor(id)
	return s, arg, err
}

// Delete ends the live session id, or returns ErrNotFound.
func (c *Client) Delete(ctx context.Context, id string) error {
	s, err := c.stubFor(id)
	if err != nil {
		return err
	}
	_, err = durable.Call[struct{}](ctx, s, "Delete", id)
	return err
}

// ListByUser returns userID's live sessions, oldest first.
func (c *Client) ListByUser(ctx context.Context, userID string) ([]Info, error) {
	if err := CheckUserID(userID); err != nil {
		return nil, err
	}
	list, err := durable.Call[[]Info](ctx, c.stub(UserShard(userID, c.shards)), "List", userID)
	if list == nil && err == nil {
		list = []Info{}
	}
	return list, err
}

// RevokeAll ends every session of userID and returns how many were live.
func (c *Client) RevokeAll(ctx context.Context, userID string) (int, error) {
	if err := CheckUserID(userID); err != nil {
		return 0, err
	}
	return durable.Call[int](ctx, c.stub(UserShard(userID, c.shards)), "Revoke", userID)
}

// ShardStats describe one shard's storage.
type ShardStats struct {
	Rows      int   `json:"rows"`        // stored sessions, expired ones included
	AlarmAtMS int64 `json:"alarm_at_ms"` // the shard's alarm; 0 if none
}

// Stats returns shard i's stats (for operators and tests).
func (c *Client) Stats(ctx context.Context, shard int) (ShardStats, error) {
	if shard < 0 || shard >= c.shards {
		return ShardStats{}, fmt.Errorf("%w: shard %d of %d", ErrInvalid, shard, c.shards)
	}
	return durable.Call[ShardStats](ctx, c.stub(shard), "Stats", nil)
}
