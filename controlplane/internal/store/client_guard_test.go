package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clientFiles may use the store's own client directly: opening and closing,
// the audited transaction itself, the audit trail's reads and purges, and the
// telemetry history's batched inserts (its background writer's), which run
// outside any admin call.
var clientFiles = map[string]bool{
	"open.go": true, "adminaudit.go": true, "audit.go": true, "auditpurge.go": true,
	"history.go": true, "requestusage.go": true,
}

// TestStoreCallsJoinTheAuditedTransaction keeps every other store call on
// s.c(ctx) or s.withTx: a call that used s.client inside an audited admin
// call would run beside its transaction, unrecorded, and on SQLite wait for
// that transaction's write lock until the database deadline.
func TestStoreCallsJoinTheAuditedTransaction(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || clientFiles[name] {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "client" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "s" {
				assert.Failf(t, "store call outside the audited transaction",
					"%s uses s.client; use s.c(ctx) or s.withTx", fset.Position(sel.Pos()))
			}
			return true
		})
	}
}
