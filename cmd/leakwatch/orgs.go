package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/database"
	"github.com/leakwatch/leakwatch/internal/orgs"
)

const orgsUsage = `Usage:
  leakwatch orgs create NAME [--owner EMAIL] [--json]
      Create an organisation (does nothing if it exists). With --owner,
      make EMAIL an owner (creating the user) and print a one-time sign-in
      link, valid for 24 hours. Safe to run again: it prints a fresh link.
      --json prints {"org_id","org","created","user_id","owner","signin_url"}.
  leakwatch orgs set-slack NAME [--webhook-url URL]
      Set the Slack incoming-webhook URL for alerts; without the flag it is
      read from stdin so it stays out of the process list. An empty URL turns
      alerts off.`

func runOrgs(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || wantsHelp(args[:1]) {
		fmt.Fprintln(stderr, orgsUsage)
		if len(args) > 0 {
			return 0
		}
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("orgs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, orgsUsage); fs.PrintDefaults() }
	webhook := fs.String("webhook-url", "", "Slack incoming-webhook URL (set-slack; default: read stdin)")
	owner := fs.String("owner", "", "email of the owner to add (create)")
	asJSON := fs.Bool("json", false, "print the result as JSON (create)")
	if sub != "create" && sub != "set-slack" {
		fmt.Fprintf(stderr, "leakwatch orgs: unknown subcommand %q\n%s\n", sub, orgsUsage)
		return 2
	}
	// Allow the name before or after the flags.
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		fs.Usage()
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	db, err := database.Open(ctx, dbConfig(cfg), newLogger(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch orgs:", err)
		return 1
	}
	defer db.Close()
	store := orgs.NewStore(db.Pool).WithBox(cfg.Encryption).WithGuard(outboundGuard(cfg))
	switch sub {
	case "create":
		o, created, err := store.Create(ctx, name)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs create:", err)
			return 1
		}
		out := orgCreated{OrgID: o.ID, Org: o.Name, Created: created}
		if *owner != "" {
			if err := addOwner(ctx, auth.NewStore(db.Pool, auth.Config{}), o, *owner, cfg.BaseURL, &out); err != nil {
				fmt.Fprintln(stderr, "leakwatch orgs create:", err)
				return 1
			}
		}
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(out); err != nil {
				return 1
			}
			return 0
		}
		if created {
			fmt.Fprintf(stdout, "created organisation %d %q\n", o.ID, o.Name)
		} else {
			fmt.Fprintf(stdout, "organisation %d %q already exists\n", o.ID, o.Name)
		}
		if out.Owner != "" {
			fmt.Fprintf(stdout, "owner %s (user %d)\none-time sign-in link (24 h): %s\n", out.Owner, out.UserID, out.SigninURL)
		}
	case "set-slack":
		url := *webhook
		if url == "" {
			b, err := io.ReadAll(io.LimitReader(stdin, 4096))
			if err != nil {
				fmt.Fprintln(stderr, "leakwatch orgs set-slack: read stdin:", err)
				return 1
			}
			url = strings.TrimSpace(string(b))
		}
		o, err := store.ByName(ctx, name)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs set-slack:", err)
			return 1
		}
		if err := store.SetSlackWebhook(ctx, o.ID, url); err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs set-slack:", err)
			return 1
		}
		if url == "" {
			fmt.Fprintf(stdout, "Slack alerts off for %q\n", o.Name)
		} else {
			fmt.Fprintf(stdout, "Slack webhook set for %q\n", o.Name)
		}
	}
	return 0
}

// orgCreated is what `orgs create` reports.
type orgCreated struct {
	OrgID     int64  `json:"org_id"`
	Org       string `json:"org"`
	Created   bool   `json:"created"`
	UserID    int64  `json:"user_id,omitempty"`
	Owner     string `json:"owner,omitempty"`
	SigninURL string `json:"signin_url,omitempty"`
}

// addOwner makes email an owner of o (an existing member keeps a higher
// role; a lower one is raised) and mints a one-time sign-in link.
func addOwner(ctx context.Context, store *auth.Store, o orgs.Org, email, baseURL string, out *orgCreated) error {
	u, _, err := store.EnsureUser(ctx, email)
	if err != nil {
		return err
	}
	m, _, err := store.AddMember(ctx, o.ID, u.ID, auth.RoleOwner)
	if err != nil {
		return err
	}
	if m.Role != auth.RoleOwner {
		if _, err := store.SetRole(ctx, o.ID, u.ID, auth.RoleOwner); err != nil {
			return err
		}
	}
	token, err := store.NewLoginLink(ctx, u.ID, o.ID)
	if err != nil {
		return err
	}
	out.UserID, out.Owner = u.ID, u.Email
	out.SigninURL = strings.TrimRight(baseURL, "/") + "/signin/link?token=" + url.QueryEscape(token)
	return nil
}
