package migrations_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// owners names the one package whose SQL may name each table (issue #15:
// a schema change touches one package). Other packages call the owner's
// methods, or read it in a query marked "// read-only join: <why>" where a
// list or filter query cannot do without the join. A new table needs an
// entry here.
var owners = map[string]string{
	"api_tokens":           "internal/auth",
	"audit_log":            "internal/audit",
	"crawl_content":        "crawler",
	"crawl_feed_polls":     "crawler/github",
	"crawl_feeds":          "crawler/github",
	"crawl_gap_hours":      "crawler/github",
	"crawl_gaps":           "crawler/github",
	"crawl_live_hours":     "crawler/github",
	"event_webhooks":       "incidents/eventhooks",
	"gharchive_hours":      "crawler/github",
	"github_event_batches": "crawler/github",
	"github_push_coverage": "crawler/github",
	"github_token_budgets": "crawler/github",
	"github_watches":       "crawler/github",
	"incident_events":      "incidents",
	"incident_settings":    "incidents",
	"incidents":            "incidents",
	"invitations":          "internal/auth",
	"key_fingerprints":     "internal/keys",
	"keys":                 "internal/keys",
	"keyset_version":       "internal/keys",
	"login_attempts":       "internal/auth",
	"login_links":          "internal/auth",
	"memberships":          "internal/auth",
	"occurrences":          "incidents",
	"orgs":                 "internal/orgs",
	"paste_items":          "crawler/paste",
	"paste_sources":        "crawler/paste",
	"revocation_endpoints": "incidents",
	"revoker_calls":        "crawler/revoke",
	"revoker_parked":       "crawler/revoke",
	"sessions":             "internal/auth",
	"slack_connections":    "incidents/slack",
	"slack_messages":       "incidents/slack",
	"slack_posts":          "incidents/slack",
	"users":                "internal/auth",
	"webhook_attempts":     "internal/platform/webhook",
	"webhook_deliveries":   "internal/platform/webhook",
	"webhook_signing_keys": "internal/platform/webhook",
}

// pending lists, per package, the other packages' tables it still names
// without a mark. Empty since the Slack and event-webhook notifiers read
// through their owners' interfaces (issue #15); an entry no longer needed
// fails the test, so the list only shrinks.
var pending = map[string][]string{}

// justified marks a read of another package's table that a list or filter
// query needs; it must say why, and it never excuses a write.
const justified = "read-only join:"

// TestTablesHaveOneOwner reads the repository's own non-test Go files and
// fails when a package other than a table's owner names it in SQL.
func TestTablesHaveOneOwner(t *testing.T) {
	t.Parallel()
	tables := migrationTables(t)
	for _, tb := range tables {
		if owners[tb] == "" {
			t.Errorf("table %s (migrations/sql) has no owner: add it to owners", tb)
		}
	}
	for tb := range owners {
		if !slices.Contains(tables, tb) {
			t.Errorf("owners names %s, which no migration creates", tb)
		}
	}
	used := map[string]map[string]bool{} // pending entries still needed
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if pkg == "migrations" {
			return nil // the schema itself
		}
		uses, err := tableUses(path, src, tables)
		if err != nil {
			return err
		}
		for _, u := range uses {
			owner := owners[u.table]
			switch {
			case owner == pkg:
			case slices.Contains(pending[pkg], u.table):
				if used[pkg] == nil {
					used[pkg] = map[string]bool{}
				}
				used[pkg][u.table] = true
			case u.write:
				t.Errorf("%s:%d: %s writes %s, which %s owns: call the owner's method", path, u.line, pkg, u.table, owner)
			case !u.justified:
				t.Errorf("%s:%d: %s reads %s, which %s owns: call the owner's read function, or mark a join a list needs with // %s <why>", path, u.line, pkg, u.table, owner, justified)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, tbs := range pending {
		for _, tb := range tbs {
			if !used[pkg][tb] {
				t.Errorf("pending: %s no longer names %s: remove it from the list", pkg, tb)
			}
		}
	}
}

// TestTableUses checks the scanner itself on a small source: a test that
// reports nothing could otherwise pass by reading nothing.
func TestTableUses(t *testing.T) {
	t.Parallel()
	src := `package x

const q = "SELECT id FROM keys WHERE org_id = $1"

// read-only join: the list filters by organisation name.
const list = ` + "`SELECT k.id FROM keys k JOIN orgs o ON o.id = k.org_id`" + `

func f() {
	// read-only join: an excuse never covers a write.
	db.Exec(ctx, "UPDATE orgs SET name = $2 WHERE id = $1")
	db.Exec(ctx, ` + "`\n\t\tDELETE FROM\n\t\tusers WHERE id = $1`" + `)
	db.Exec(ctx, "INSERT INTO audit_log (x) VALUES (1) ON CONFLICT DO UPDATE SET x = 2 FOR UPDATE")
	_ = "errors name no table: from the keys"
}
`
	uses, err := tableUses("x.go", []byte(src), []string{"keys", "orgs", "users", "audit_log"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range uses {
		got = append(got, strconv.Itoa(u.line)+" "+u.table+" write="+strconv.FormatBool(u.write)+" justified="+strconv.FormatBool(u.justified))
	}
	want := []string{
		"3 keys write=false justified=false",
		"6 keys write=false justified=true",
		"6 orgs write=false justified=true",
		"10 orgs write=true justified=true",
		"13 users write=true justified=false",
		"14 audit_log write=true justified=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("uses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var createTable = regexp.MustCompile(`(?i)create table (?:if not exists )?([a-z_][a-z0-9_]*)`)

// migrationTables returns every table the migrations create.
func migrationTables(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("sql/*.sql")
	if err != nil || len(paths) == 0 {
		t.Fatalf("migrations: %v (%d files)", err, len(paths))
	}
	seen := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range createTable.FindAllStringSubmatch(string(b), -1) {
			seen[strings.ToLower(m[1])] = true
		}
	}
	var out []string
	for tb := range seen {
		out = append(out, tb)
	}
	sort.Strings(out)
	return out
}

// tableUse is one table named in one SQL string literal.
type tableUse struct {
	table     string
	line      int
	write     bool // INSERT INTO, UPDATE, DELETE FROM, … TABLE
	justified bool // under a "read-only join:" comment
}

// sqlName finds a table after an SQL keyword. Keywords are upper case, as
// the repository writes its SQL, so English text in messages ("read from
// the keys") is not taken for a query.
var sqlName = regexp.MustCompile(`\b(DELETE\s+FROM|FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:ONLY\s+)?([a-z_][a-z0-9_]*)\b`)

// tableUses lists the tables among tables that the string literals of one
// Go file name in SQL.
func tableUses(path string, src []byte, tables []string) ([]tableUse, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var marks []*ast.CommentGroup
	for _, cg := range f.Comments {
		if i := strings.Index(cg.Text(), justified); i >= 0 && strings.TrimSpace(cg.Text()[i+len(justified):]) != "" {
			marks = append(marks, cg)
		}
	}
	line := func(p token.Pos) int { return fset.Position(p).Line }
	var out []tableUse
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		// The statement or declaration the literal belongs to: a mark is
		// the comment right above it or a comment inside it.
		start := line(lit.Pos())
		for i := len(stack) - 1; i >= 0; i-- {
			_, block := stack[i].(*ast.BlockStmt)
			_, stmt := stack[i].(ast.Stmt)
			_, spec := stack[i].(*ast.ValueSpec)
			_, decl := stack[i].(*ast.GenDecl)
			if (stmt && !block) || spec || decl {
				start = line(stack[i].Pos())
				break
			}
		}
		isJustified := false
		for _, cg := range marks {
			if line(cg.End()) == start-1 || (cg.Pos() >= stack[0].Pos() && line(cg.Pos()) >= start && cg.Pos() <= lit.End()) {
				isJustified = true
			}
		}
		for _, m := range sqlName.FindAllStringSubmatchIndex(s, -1) {
			kw, name := s[m[2]:m[3]], s[m[4]:m[5]]
			if !slices.Contains(tables, name) {
				continue
			}
			out = append(out, tableUse{
				table:     name,
				line:      line(lit.Pos()) + strings.Count(s[:m[4]], "\n"),
				write:     kw != "FROM" && kw != "JOIN",
				justified: isJustified,
			})
		}
		return true
	})
	return out, nil
}
