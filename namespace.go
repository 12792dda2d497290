package durable

import (
	"crypto/hmac"
	"crypto/sha256"
	"reflect"
	"sync"
	"sync/atomic"
)

// Namespace is one registered class: it makes IDs and stubs for its objects.
type Namespace struct {
	rt   *Runtime
	name string
	ctor Constructor
	key  []byte // derived from the data directory's secret at Open

	methods sync.Map // reflect.Type -> *methodTable
}

// Name returns the class name the namespace was registered with.
func (ns *Namespace) Name() string { return ns.name }

// Get returns a stub for the object id names. It is cheap: no object is
// activated until the first call. A stub for an ID of another namespace
// fails every call with ErrInvalidID.
func (ns *Namespace) Get(id ID) *Stub {
	return &Stub{ns: ns, id: id, obj: new(atomic.Pointer[object])}
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
