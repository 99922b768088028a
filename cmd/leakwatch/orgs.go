package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/internal/platform/database"
)

const orgsUsage = `Usage:
  leakwatch orgs create NAME [--owner EMAIL] [--json]
  leakwatch orgs set-slack NAME [--webhook-url URL]
  leakwatch orgs set-revocation NAME --url URL [--hmac]

Each subcommand takes --help.
`

var orgsSubUsage = map[string]string{
	"create": `Usage: leakwatch orgs create NAME [--owner EMAIL] [--json]

Creates an organisation (does nothing if it exists). With --owner, makes
EMAIL an owner (creating the user) and prints a one-time sign-in link,
valid for 24 hours. Safe to run again: it prints a fresh link. On a
database never migrated it migrates first (see LEAKWATCH_AUTO_MIGRATE).
`,
	"set-slack": `Usage: leakwatch orgs set-slack NAME [--webhook-url URL]

Sets the Slack incoming-webhook URL alerts are posted to. The URL must look
like https://hooks.slack.com/services/T…/B…/… (Slack's own), and a test
message is posted first: the URL is kept only if Slack accepts it. Without
the flag the URL is read from stdin, so it stays out of the process list.
An empty URL turns alerts off.
`,
	"set-revocation": `Usage: leakwatch orgs set-revocation NAME --url URL [--hmac]

Sets the organisation's default revocation endpoint: on a leak, Leakwatch
POSTs a signed revocation request there (Ed25519, keys published at
/.well-known/leakwatch/webhook-keys). With --hmac, requests also carry an
HMAC signature whose secret is printed now, once.
`,
}

func runOrgs(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || wantsHelp(args[:1]) {
		fmt.Fprint(stdoutOr(len(args) > 0, stdout, stderr), orgsUsage)
		return exitHelp(len(args) > 0)
	}
	sub, rest := args[0], args[1:]
	usage, known := orgsSubUsage[sub]
	if !known {
		fmt.Fprintf(stderr, "leakwatch orgs: unknown subcommand %q\n%s", sub, orgsUsage)
		return 2
	}
	fs := flag.NewFlagSet("orgs "+sub, flag.ContinueOnError)
	var owner, webhookURL, revURL *string
	var asJSON, hmac *bool
	switch sub {
	case "create":
		owner = fs.String("owner", "", "email of the owner to add")
		asJSON = fs.Bool("json", false, `print {"org_id","org","created","user_id","owner","signin_url"}`)
	case "set-slack":
		webhookURL = fs.String("webhook-url", "", "Slack incoming-webhook URL (default: read stdin)")
	case "set-revocation":
		revURL = fs.String("url", "", "revocation endpoint URL (required)")
		hmac = fs.Bool("hmac", false, "also sign with a generated HMAC secret, printed once")
	}
	// Allow the name before or after the flags.
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if code, ok := parseFlags(fs, rest, usage+"\nFlags:\n", stdout, stderr); !ok {
		return code
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" || (revURL != nil && *revURL == "") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	logger := newLogger(cfg, stderr)
	db, err := openSchema(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "leakwatch orgs %s: %v\n", sub, err)
		return 1
	}
	defer db.Close()
	store := orgs.NewStore(db.Pool).WithBox(cfg.Encryption).WithGuard(outboundGuard(cfg))
	switch sub {
	case "create":
		return orgsCreate(ctx, db, store, cfg, name, *owner, *asJSON, stdout, stderr)
	case "set-slack":
		return orgsSetSlack(ctx, store, name, *webhookURL, stdin, stdout, stderr)
	default:
		return orgsSetRevocation(ctx, db, store, name, *revURL, *hmac, logger, stdout, stderr)
	}
}

func orgsCreate(ctx context.Context, db *database.DB, store *orgs.Store, cfg Config, name, owner string, asJSON bool, stdout, stderr io.Writer) int {
	var out orgCreated
	if owner == "" {
		o, created, err := store.Create(ctx, audit.CLI, name)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs create:", err)
			return 1
		}
		out = orgCreated{OrgID: o.ID, Org: o.Name, Created: created}
	} else {
		// One transaction: a failure leaves no organisation without owner.
		r, err := auth.NewStore(db.Pool, auth.Config{}).CreateOrgWithOwner(ctx, store, audit.CLI, name, owner)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs create:", err)
			return 1
		}
		out = orgCreated{OrgID: r.Org.ID, Org: r.Org.Name, Created: r.OrgCreated, UserID: r.Owner.UserID, Owner: r.Owner.Email,
			SigninURL: signinURL(cfg.BaseURL, r.LoginToken)}
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return 1
		}
		return 0
	}
	if out.Created {
		fmt.Fprintf(stdout, "created organisation %d %q\n", out.OrgID, out.Org)
	} else {
		fmt.Fprintf(stdout, "organisation %d %q already exists\n", out.OrgID, out.Org)
	}
	if out.Owner != "" {
		fmt.Fprintf(stdout, "owner %s (user %d)\none-time sign-in link (24 h): %s\n", out.Owner, out.UserID, out.SigninURL)
	}
	return 0
}

func orgsSetSlack(ctx context.Context, store *orgs.Store, name, hookURL string, stdin io.Reader, stdout, stderr io.Writer) int {
	if hookURL == "" {
		b, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs set-slack: read stdin:", err)
			return 1
		}
		hookURL = strings.TrimSpace(string(b))
	}
	o, err := store.ByName(ctx, name)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch orgs set-slack:", err)
		return 1
	}
	if hookURL != "" {
		if err := checkSlackWebhookURL(hookURL); err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs set-slack:", err)
			return 2
		}
		if err := postSlackTest(ctx, hookURL, o.Name); err != nil {
			fmt.Fprintln(stderr, "leakwatch orgs set-slack: the test message was refused, so the URL is not kept:", err)
			return 1
		}
	}
	if err := store.SetSlackWebhook(ctx, audit.CLI, o.ID, hookURL); err != nil {
		fmt.Fprintln(stderr, "leakwatch orgs set-slack:", err)
		return 1
	}
	if hookURL == "" {
		fmt.Fprintf(stdout, "Slack alerts off for %q\n", o.Name)
	} else {
		fmt.Fprintf(stdout, "Slack webhook set for %q; a test message was posted to its channel\n", o.Name)
	}
	return 0
}

// slackWebhookPath is the shape of Slack's incoming-webhook URLs: team id,
// bot (webhook) id, and a 24-character token.
var slackWebhookPath = regexp.MustCompile(`^/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}$`)

// checkSlackWebhookURL refuses anything but a Slack incoming-webhook URL, so
// a placeholder or a typo fails now instead of on every alert.
func checkSlackWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host != "hooks.slack.com" || u.RawQuery != "" || u.User != nil ||
		!slackWebhookPath.MatchString(u.Path) {
		return errors.New("not a Slack incoming-webhook URL: expected https://hooks.slack.com/services/T…/B…/… as Slack shows it (Apps → Incoming Webhooks)")
	}
	token := path.Base(u.Path)
	if strings.Trim(token, "X") == "" || strings.Trim(token, "x") == "" || strings.Contains(u.Path, "/T000") {
		return errors.New("that is the example URL, not a real one: copy yours from Slack (Apps → Incoming Webhooks)")
	}
	return nil
}

// slackHTTPClient posts the test message; tests point its transport at a
// fake.
var slackHTTPClient = &http.Client{Timeout: 10 * time.Second}

// postSlackTest posts one message, as alerts will be posted.
func postSlackTest(ctx context.Context, hookURL, org string) error {
	body, err := json.Marshal(map[string]string{"text": "Leakwatch is connected: leaks of " + org + "'s keys will be reported here."})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hookURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := slackHTTPClient.Do(req)
	if err != nil {
		// The error names the URL, which is a secret.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("post to Slack: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Slack answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func orgsSetRevocation(ctx context.Context, db *database.DB, store *orgs.Store, name, endpoint string, hmac bool, logger *slog.Logger, stdout, stderr io.Writer) int {
	o, err := store.ByName(ctx, name)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch orgs set-revocation:", err)
		return 1
	}
	secret, err := incidents.NewService(db.Pool, nil, logger, incidents.Config{}).SetRevocationEndpoint(ctx, audit.CLI, o.ID, 0, endpoint, hmac)
	if errors.Is(err, incidents.ErrInvalidEndpoint) {
		fmt.Fprintln(stderr, "leakwatch orgs set-revocation:", err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch orgs set-revocation:", err)
		return 1
	}
	fmt.Fprintf(stdout, "default revocation endpoint of %q set to %s\n", o.Name, endpoint)
	if secret != "" {
		fmt.Fprintf(stdout, "HMAC secret (shown only now; give it to the endpoint): %s\n", secret)
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

// signinURL is the one-time sign-in link of a login token.
func signinURL(baseURL, token string) string {
	return strings.TrimRight(baseURL, "/") + "/signin/link?token=" + url.QueryEscape(token)
}
