package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/leakwatch/leakwatch/internal/client"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/matcher"
)

const keysUsage = `Usage:
  leakwatch keys import --api URL (--token T | --token-file F) [--name NAME] [--env ENV] [--provider P] [--csv FILE] [--allow-weak] < secrets
      Read secrets from stdin, one per line, fingerprint each here and
      register only the fingerprints through the API (a write token).
      Metadata comes from the flags (several secrets are named NAME-1,
      NAME-2, …) or from a CSV whose header names any of name,
      environment, provider, owner, notes, tags (separated by |),
      max_age_days, revocation_url; row N describes secret N. Never put
      secrets in the CSV. Nothing is sent unless every secret fingerprints.
  leakwatch keys add --org ORG --name NAME [--allow-weak] < secret
      Register one secret (read whole from stdin: a PEM key spans lines)
      straight into the database of this installation.`

func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || wantsHelp(args[:1]) {
		fmt.Fprintln(stdoutOr(len(args) > 0, stdout, stderr), keysUsage)
		return exitHelp(len(args) > 0)
	}
	switch args[0] {
	case "add":
		return runKeysAdd(ctx, args[1:], stdin, stdout, stderr)
	case "import":
		return runKeysImport(ctx, args[1:], stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "leakwatch keys: unknown subcommand %q\n%s\n", args[0], keysUsage)
	return 2
}

func runKeysAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	org := fs.String("org", "", "organisation name (required)")
	name := fs.String("name", "", "key name (required)")
	allowWeak := fs.Bool("allow-weak", false, "register a low-entropy secret anyway")
	fs.Usage = func() { fmt.Fprintln(stderr, keysUsage); fs.PrintDefaults() }
	if code, ok := parseFlags(fs, args, keysUsage+"\n\nFlags:\n", stdout, stderr); !ok {
		return code
	}
	if *org == "" || *name == "" {
		fs.Usage()
		return 2
	}
	secret, err := readSecret(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 2
	}
	fp, err := matcher.Compute(secret, matcher.ComputeOpts{AllowWeak: *allowWeak})
	clear(secret)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 1
	}
	cfg, ok := loadConfigOrFail(stderr)
	if !ok {
		return 2
	}
	db, err := openSchema(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 1
	}
	defer db.Close()
	o, err := orgs.NewStore(db.Pool).ByName(ctx, *org)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 1
	}
	k, err := keys.NewStore(db.Pool).Add(ctx, o.ID, *name, fp)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 1
	}
	fmt.Fprintf(stdout, "registered key %d %q (%s)\n", k.ID, k.Name, k.Fingerprint)
	return 0
}

func runKeysImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "", "Leakwatch URL, e.g. https://leakwatch.example.com (required)")
	token := fs.String("token", "", "API token with write scope")
	tokenFile := fs.String("token-file", "", "read the API token from this file (keeps it out of the process list)")
	name := fs.String("name", "", "key name (with several secrets: NAME-1, NAME-2, …)")
	env := fs.String("env", "", "environment: production, staging or development")
	provider := fs.String("provider", "", "provider, for secrets without a known prefix")
	csvPath := fs.String("csv", "", "CSV file of metadata, one row per secret")
	allowWeak := fs.Bool("allow-weak", false, "register low-entropy secrets anyway")
	fs.Usage = func() { fmt.Fprintln(stderr, keysUsage); fs.PrintDefaults() }
	if code, ok := parseFlags(fs, args, keysUsage+"\n\nFlags:\n", stdout, stderr); !ok {
		return code
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch keys import: --token-file:", err)
			return 2
		}
		*token = strings.TrimSpace(string(b))
	}
	apiClient, err := client.New(*api, *token)
	switch {
	case errors.Is(err, client.ErrBaseURL):
		fmt.Fprintln(stderr, "leakwatch keys import: --api must be the http(s) URL of Leakwatch")
		return 2
	case errors.Is(err, client.ErrNoToken):
		fmt.Fprintln(stderr, "leakwatch keys import: --token or --token-file is required")
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "leakwatch keys import:", err)
		return 2
	}
	if (*csvPath == "") == (*name == "") {
		fmt.Fprintln(stderr, "leakwatch keys import: give either --name or --csv")
		return 2
	}

	// Fingerprint everything first: no request is sent if any secret is
	// refused, so a partial import needs no clean-up.
	all, refused, err := matcher.FingerprintLines(io.LimitReader(stdin, 64<<20), matcher.ComputeOpts{AllowWeak: *allowWeak})
	failed := false
	for _, r := range refused {
		if errors.Is(r, matcher.ErrEmptyLine) {
			continue // blank lines separate secrets for the eye; not an error here
		}
		fmt.Fprintln(stderr, "leakwatch keys import:", r)
		failed = true
	}
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys import: read stdin:", err)
		return 1
	}
	if failed {
		return 1
	}
	fps := make([]string, len(all))
	for i, f := range all {
		fps[i] = f.String()
	}
	if len(fps) == 0 {
		fmt.Fprintln(stderr, "leakwatch keys import: no secrets on stdin")
		return 2
	}
	var metas []client.Key
	if *csvPath != "" {
		metas, err = readKeysCSV(*csvPath)
		if err != nil {
			fmt.Fprintln(stderr, "leakwatch keys import:", err)
			return 2
		}
		if len(metas) != len(fps) {
			fmt.Fprintf(stderr, "leakwatch keys import: %d secrets on stdin but %d rows in %s\n", len(fps), len(metas), *csvPath)
			return 2
		}
	} else {
		for i := range fps {
			n := *name
			if len(fps) > 1 {
				n = fmt.Sprintf("%s-%d", *name, i+1)
			}
			metas = append(metas, client.Key{Name: n, Environment: *env, Provider: *provider})
		}
	}

	code := 0
	for i, m := range metas {
		m.Fingerprint = fps[i]
		id, err := apiClient.AddKey(ctx, m)
		if err != nil {
			fmt.Fprintf(stderr, "leakwatch keys import: %q: %v\n", m.Name, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "registered key %d %q (%s)\n", id, m.Name, m.Fingerprint)
	}
	return code
}

// readKeysCSV reads the key metadata file of `keys import`.
func readKeysCSV(path string) ([]client.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ks, err := client.ReadKeysCSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// readSecret reads all of stdin (a PEM key spans lines) and drops one
// trailing newline.
func readSecret(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(bufio.NewReader(io.LimitReader(r, 1<<20)))
	if err != nil {
		return nil, fmt.Errorf("read secret from stdin: %w", err)
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, errors.New("no secret on stdin")
	}
	return b, nil
}
