package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/leakwatch/leakwatch/internal/database"
	"github.com/leakwatch/leakwatch/internal/keys"
	"github.com/leakwatch/leakwatch/internal/orgs"
	"github.com/leakwatch/leakwatch/matcher"
)

func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "Usage: leakwatch keys add --org ORG --name NAME [--allow-weak] < secret")
		if wantsHelp(args) {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("keys add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	org := fs.String("org", "", "organisation name (required)")
	name := fs.String("name", "", "key name (required)")
	allowWeak := fs.Bool("allow-weak", false, "register a low-entropy secret anyway")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: leakwatch keys add --org ORG --name NAME [--allow-weak] < secret\n\nReads the secret from stdin, fingerprints it here and stores only the fingerprint.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
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
	db, err := database.Open(ctx, dbConfig(cfg), newLogger(cfg, stderr))
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
