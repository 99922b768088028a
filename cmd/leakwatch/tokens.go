package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/database"
	"github.com/leakwatch/leakwatch/migrations"
)

const tokensUsage = `Usage: leakwatch tokens create --org ORG --scope read|write --name NAME

Creates an API token of the organisation and prints it, once (it is never
stored). Read tokens act as viewers, write tokens as admins. The token is
created on behalf of the organisation's first owner, who can see and revoke
it on the dashboard's API tokens page.
`

func runTokens(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (wantsHelp(args[:1])) {
		fmt.Fprint(stdoutOr(len(args) > 0, stdout, stderr), tokensUsage)
		return exitHelp(len(args) > 0)
	}
	if args[0] != "create" {
		fmt.Fprintf(stderr, "leakwatch tokens: unknown subcommand %q\n%s", args[0], tokensUsage)
		return 2
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	org := fs.String("org", "", "organisation name (required)")
	scope := fs.String("scope", "", "read or write (required)")
	name := fs.String("name", "", "what the token is for, e.g. \"CI key import\" (required)")
	if code, ok := parseFlags(fs, args[1:], tokensUsage+"\nFlags:\n", stdout, stderr); !ok {
		return code
	}
	if *org == "" || *name == "" || (*scope != auth.ScopeRead && *scope != auth.ScopeWrite) || fs.NArg() > 0 {
		fmt.Fprint(stderr, "leakwatch tokens create: --org, --name and --scope read|write are required\n\n"+tokensUsage+"\nFlags:\n")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	db, err := openSchema(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch tokens create:", err)
		return 1
	}
	defer db.Close()
	o, err := orgs.NewStore(db.Pool).ByName(ctx, *org)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch tokens create:", err)
		return 1
	}
	store := auth.NewStore(db.Pool, auth.Config{})
	owner, err := firstOwner(ctx, store, o.ID)
	if err != nil {
		fmt.Fprintf(stderr, "leakwatch tokens create: %v (add one: leakwatch orgs create %s --owner EMAIL)\n", err, o.Name)
		return 1
	}
	value, t, err := store.CreateToken(ctx, audit.Actor{Name: owner.Email + " (cli)", UserID: owner.UserID}, o.ID, owner.UserID, *name, *scope)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch tokens create:", err)
		return 1
	}
	fmt.Fprintf(stderr, "created %s token %q (id %d) of %q for %s; it is shown only now\n", t.Scope, t.Name, t.ID, o.Name, owner.Email)
	fmt.Fprintln(stdout, value)
	return 0
}

var errNoOwner = errors.New("the organisation has no owner")

// firstOwner is the owner a CLI-made token is bound to: the longest-standing
// one, so the choice does not change as owners come and go.
func firstOwner(ctx context.Context, store *auth.Store, orgID int64) (auth.Membership, error) {
	ms, err := store.Members(ctx, orgID)
	if err != nil {
		return auth.Membership{}, err
	}
	ms = slices.DeleteFunc(ms, func(m auth.Membership) bool { return m.Role != auth.RoleOwner })
	if len(ms) == 0 {
		return auth.Membership{}, errNoOwner
	}
	slices.SortStableFunc(ms, func(a, b auth.Membership) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return ms[0], nil
}

// openSchema opens the database for a command that needs the schema. Like
// serve, it applies pending migrations when LEAKWATCH_AUTO_MIGRATE is true
// (the default), so the first command on a fresh database works; otherwise
// it refuses an outdated schema, naming `leakwatch migrate`.
func openSchema(ctx context.Context, cfg Config, logger *slog.Logger) (*database.DB, error) {
	db, err := database.Open(ctx, dbConfig(cfg), logger)
	if err != nil {
		return nil, err
	}
	if cfg.AutoMigrate {
		err = migrations.Migrate(ctx, db.Pool, logger)
	} else if err = migrations.Check(ctx, db.Pool); err != nil && !strings.Contains(err.Error(), "leakwatch migrate") {
		err = fmt.Errorf("%w (run `leakwatch migrate`)", err)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// stdoutOr picks where usage goes: stdout when asked for, stderr after a
// mistake.
func stdoutOr(asked bool, stdout, stderr io.Writer) io.Writer {
	if asked {
		return stdout
	}
	return stderr
}

func exitHelp(asked bool) int {
	if asked {
		return 0
	}
	return 2
}
