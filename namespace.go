package durable

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// Namespace is one registered class: it makes IDs and stubs for its objects.
type Namespace struct {
	rt   *Runtime
	name string
	ctor Constructor
	key  []byte // derived from the data directory's secret at Open

	schema   string           // SetSchema's SQL
	storeCfg *sqlstore.Config // set at Open: the class's template

	methods sync.Map  // reflect.Type -> *methodTable
	hmacs   sync.Pool // hash.Hash keyed by key (see sum)
}

// Name returns the class name the namespace was registered with.
func (ns *Namespace) Name() string { return ns.name }

// SetSchema gives the class's objects tables from birth: sql (CREATE TABLE
// and CREATE INDEX statements, say) runs once, at Open, on the template
// every new object's database is copied from, so creating an object costs
// no DDL. Objects created before the schema was set or changed do not get
// it: code that must also work on them still creates what it needs with
// IF NOT EXISTS (cheap once the table is there). Names starting with
// "_durable_" are reserved. Storage.DeleteAll leaves an object with the
// schema again, as a new one. Call it before Open; a bad schema fails Open.
func (ns *Namespace) SetSchema(sql string) error {
	ns.rt.mu.Lock()
	defer ns.rt.mu.Unlock()
	if ns.rt.opened {
		return fmt.Errorf("durable: schema of %q: runtime already open", ns.name)
	}
	ns.schema = sql
	return nil
}

// Get returns a stub for the object id names. It is cheap: no object is
// activated until the first call. A stub for an ID of another namespace
// fails every call with ErrInvalidID.
func (ns *Namespace) Get(id ID) *Stub {
	retry := ns.rt.StubRetry
	if retry == (Retry{}) {
		retry = DefaultRetry
	}
	return &Stub{ns: ns, id: id, obj: new(atomic.Pointer[object]), retry: retry}
}

// GetByName is Get(IDFromName(name)).
func (ns *Namespace) GetByName(name string) *Stub {
	return ns.Get(ns.IDFromName(name))
}

func namespaceKey(secret []byte, ns string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("durable namespace v1:"))
	m.Write([]byte(ns))
	return m.Sum(nil)
}

func (ns *Namespace) methodsFor(t reflect.Type) *methodTable {
	if m, ok := ns.methods.Load(t); ok {
		return m.(*methodTable)
	}
	m, _ := ns.methods.LoadOrStore(t, newMethodTable(t))
	return m.(*methodTable)
}
