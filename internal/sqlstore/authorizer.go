package sqlstore

import (
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// reservedPrefix marks the internal tables; user SQL cannot reach them.
const reservedPrefix = "_durable_"

// allowedPragmas are the PRAGMAs user SQL may run, with the arguments they
// accept (Cloudflare's allowlist).
var allowedPragmas = map[string]pragmaRule{
	"data_version":              noArg,
	"page_size":                 noArg,
	"page_count":                noArg,
	"case_sensitive_like":       boolArg,
	"foreign_keys":              boolArg,
	"defer_foreign_keys":        boolArg,
	"ignore_check_constraints":  boolArg,
	"legacy_alter_table":        boolArg,
	"recursive_triggers":        boolArg,
	"reverse_unordered_selects": boolArg,
	"foreign_key_check":         tableArg,
	"foreign_key_list":          tableArg,
	"index_info":                tableArg,
	"index_list":                tableArg,
	"index_xinfo":               tableArg,
	"table_info":                tableArg,
	"table_xinfo":               tableArg,
	"table_list":                tableArg,
	"quick_check":               tableArg,
	"optimize":                  anyArg,
}

type pragmaRule int

const (
	noArg    pragmaRule = iota // read only, no argument
	anyArg                     // any argument
	tableArg                   // argument names a schema object, not a reserved one
	boolArg                    // read, or set to a boolean
)

// authorizer checks user statements at prepare time. Internal statements
// run with it switched off.
type authorizer struct {
	user   bool   // checking a user statement
	denied string // why the last user statement was denied
	ddl    bool   // the user statement creates or alters schema objects
	pragma bool   // the user statement is a PRAGMA
}

// noTemp is why TEMP schema objects are refused (as Cloudflare does): they
// live on the connection, not in the object's database, and would vanish
// when the object leaves memory.
const noTemp = "TEMP tables, views, indexes and triggers are not allowed: they would vanish when the object leaves memory"

func (a *authorizer) install(c *sqlite3.Conn) error {
	return c.SetAuthorizer(a.check)
}

func isReserved(name string) bool {
	return len(name) >= len(reservedPrefix) && strings.EqualFold(name[:len(reservedPrefix)], reservedPrefix)
}

func (a *authorizer) deny(format string, args ...any) sqlite3.AuthorizerReturnCode {
	if a.denied == "" {
		a.denied = fmt.Sprintf(format, args...)
	}
	return sqlite3.AUTH_DENY
}

func (a *authorizer) check(action sqlite3.AuthorizerActionCode, name3, name4, schema, inner string) sqlite3.AuthorizerReturnCode {
	if !a.user {
		return sqlite3.AUTH_OK
	}
	switch action {
	case sqlite3.AUTH_TRANSACTION, sqlite3.AUTH_SAVEPOINT:
		return a.deny("BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: every event is a transaction already; use Storage.Transaction for a nested one")
	case sqlite3.AUTH_ATTACH, sqlite3.AUTH_DETACH:
		return a.deny("ATTACH and DETACH are not allowed: an object reaches only its own database")
	case sqlite3.AUTH_PRAGMA:
		a.pragma = true
		return a.checkPragma(strings.ToLower(name3), name4)
	case sqlite3.AUTH_CREATE_TEMP_INDEX, sqlite3.AUTH_CREATE_TEMP_TABLE,
		sqlite3.AUTH_CREATE_TEMP_TRIGGER, sqlite3.AUTH_CREATE_TEMP_VIEW:
		return a.deny(noTemp)
	case sqlite3.AUTH_CREATE_INDEX, sqlite3.AUTH_CREATE_TABLE, sqlite3.AUTH_CREATE_TRIGGER,
		sqlite3.AUTH_CREATE_VIEW, sqlite3.AUTH_CREATE_VTABLE, sqlite3.AUTH_ALTER_TABLE:
		if strings.EqualFold(schema, "temp") { // CREATE TABLE temp.t
			return a.deny(noTemp)
		}
		a.ddl = true
	case sqlite3.AUTH_FUNCTION:
		switch strings.ToLower(name4) {
		case "sqlite_version", "sqlite_source_id", "sqlite_compileoption_get",
			"sqlite_compileoption_used", "load_extension":
			return a.deny("function %s is not allowed", name4)
		}
		return sqlite3.AUTH_OK
	}
	names := [...]string{name3, name4}
	switch action {
	case sqlite3.AUTH_READ, sqlite3.AUTH_UPDATE:
		names[1] = "" // a column name: only table, index and trigger names are reserved
	case sqlite3.AUTH_ANALYZE:
		// ANALYZE and PRAGMA optimize visit every table: skip the internal
		// ones (their sqlite_stat4 samples would be KV keys) rather than
		// fail the whole statement.
		if isReserved(name3) {
			return sqlite3.AUTH_IGNORE
		}
	}
	for _, n := range names {
		if isReserved(n) {
			return a.deny("%q is an internal table: use the KV API", n)
		}
	}
	return sqlite3.AUTH_OK
}

func (a *authorizer) checkPragma(name, arg string) sqlite3.AuthorizerReturnCode {
	rule, ok := allowedPragmas[name]
	if !ok {
		return a.deny("PRAGMA %s is not allowed", name)
	}
	switch rule {
	case noArg:
		if arg != "" {
			return a.deny("PRAGMA %s cannot be set", name)
		}
	case tableArg:
		if isReserved(arg) {
			return a.deny("%q is an internal table", arg)
		}
	case boolArg:
		switch strings.ToLower(arg) {
		case "", "0", "1", "on", "off", "true", "false", "yes", "no":
		default:
			return a.deny("PRAGMA %s takes a boolean (ON, OFF, TRUE, FALSE, YES, NO, 1 or 0), not %q", name, arg)
		}
	}
	return sqlite3.AUTH_OK
}
