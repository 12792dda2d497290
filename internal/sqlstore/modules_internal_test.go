package sqlstore

import (
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// needModule registers an extension only for an error naming exactly one
// of their modules: a module whose own name holds such an error's text is
// not one (else FTS5 would be registered again on every such statement).
func TestNeedModuleTakesExactNames(t *testing.T) {
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		`CREATE VIRTUAL TABLE v USING "no such module: fts5"`,
		`CREATE VIRTUAL TABLE v USING "fts5 "`,
		`CREATE VIRTUAL TABLE v USING nosuch`,
	} {
		err := c.Exec(q)
		if err == nil {
			t.Fatalf("%s: no error", q)
		}
		if needModule(c, err) {
			t.Errorf("%s (%v): an extension was registered", q, err)
		}
	}
	err = c.Exec("CREATE VIRTUAL TABLE v USING FTS5(x)")
	if !needModule(c, err) {
		t.Fatalf("FTS5 (%v): not registered", err)
	}
	if err := c.Exec("CREATE VIRTUAL TABLE v USING FTS5(x)"); err != nil {
		t.Fatalf("after registering: %v", err)
	}
}
