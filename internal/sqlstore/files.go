package sqlstore

import (
	"fmt"
	"os"
	"sync"

	"github.com/ncruces/go-sqlite3"
)

// DirCache creates directories once and remembers them, so creating a file
// in an existing fan-out directory costs no mkdir.
type DirCache struct {
	known sync.Map // dir -> struct{}
}

// MkdirAll creates dir and its parents if they are not known to exist.
func (d *DirCache) MkdirAll(dir string) error {
	if _, ok := d.known.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	d.known.Store(dir, struct{}{})
	return nil
}

// schema is the internal schema of every object database. Both tables are
// WITHOUT ROWID so the only schema objects with the reserved prefix are
// these two (the authorizer's post-check relies on it).
const schema = `
CREATE TABLE _durable_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE _durable_meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;
`

// reservedObjects is how many schema objects carry the reserved prefix in a
// database made from the template.
const reservedObjects = 2

// NewTemplate builds the bytes of an empty object database in WAL mode, by
// creating one in dir and reading it back. Copying these bytes is how new
// objects are created: far cheaper than building a database per object.
// classSchema, if not empty, is SQL run after the internal schema (a
// class's tables), so its objects start with them; it may not create
// names with the reserved prefix.
func NewTemplate(dir, classSchema string) ([]byte, error) {
	f, err := os.CreateTemp(dir, ".template-*.sqlite")
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	defer os.Remove(path + "-wal")
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	err = c.Exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL;" + schema)
	if err == nil && classSchema != "" {
		err = execClassSchema(c, classSchema)
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return b, nil
}

// execClassSchema runs a class's schema on a new database (a template or
// a scratch database), or again after DeleteAll. It runs in a savepoint
// under the rules of user SQL (the authorizer's): a schema that controls
// transactions, sets PRAGMAs or vacuums fails here, when the runtime
// opens, rather than in DeleteAll, inside an event's transaction. The
// connection is left with no authorizer: callers that had one install it
// again.
func execClassSchema(c *sqlite3.Conn, classSchema string) error {
	if err := c.Exec("SAVEPOINT class_schema"); err != nil {
		return err
	}
	a := &authorizer{user: true}
	err := a.install(c)
	if err == nil {
		err = execModules(c, classSchema)
		if err != nil && a.denied != "" {
			err = fmt.Errorf("%w: %s", ErrNotAllowed, a.denied)
		}
	}
	c.SetAuthorizer(nil)
	if err == nil {
		err = checkReserved(c)
	}
	if err != nil {
		c.Exec("ROLLBACK TO class_schema; RELEASE class_schema")
		return fmt.Errorf("class schema: %w", err)
	}
	return c.Exec("RELEASE class_schema")
}
