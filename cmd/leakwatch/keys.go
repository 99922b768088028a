package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/leakwatch/leakwatch/internal/audit"
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
	k, err := keys.NewStore(db.Pool).Add(ctx, audit.CLI, o.ID, *name, fp)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch keys add:", err)
		return 1
	}
	fmt.Fprintf(stdout, "registered key %d %q (%s)\n", k.ID, k.Name, k.Fingerprint)
	return 0
}

// importMeta is the metadata of one imported key: the API's key fields
// without the fingerprint.
type importMeta struct {
	Name          string   `json:"name"`
	Fingerprint   string   `json:"fingerprint"`
	Provider      string   `json:"provider,omitempty"`
	Environment   string   `json:"environment,omitempty"`
	Owner         string   `json:"owner,omitempty"`
	Notes         string   `json:"notes,omitempty"`
	Tags          []string `json:"tags,omitempty"`
	MaxAgeDays    int      `json:"max_age_days,omitempty"`
	RevocationURL string   `json:"revocation_url,omitempty"`
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
	base, err := url.Parse(*api)
	if *api == "" || err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintln(stderr, "leakwatch keys import: --api must be the http(s) URL of Leakwatch")
		return 2
	}
	if *token == "" {
		fmt.Fprintln(stderr, "leakwatch keys import: --token or --token-file is required")
		return 2
	}
	if (*csvPath == "") == (*name == "") {
		fmt.Fprintln(stderr, "leakwatch keys import: give either --name or --csv")
		return 2
	}

	// Fingerprint everything first: no request is sent if any secret is
	// refused, so a partial import needs no clean-up.
	var fps []string
	sc := bufio.NewScanner(io.LimitReader(stdin, 64<<20))
	sc.Buffer(make([]byte, 0, 64<<10), matcher.MaxSecretLen+2)
	line := 0
	failed := false
	for sc.Scan() {
		line++
		secret := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(secret)) == 0 {
			continue
		}
		fp, err := matcher.Compute(secret, matcher.ComputeOpts{AllowWeak: *allowWeak})
		clear(secret)
		if err != nil {
			fmt.Fprintf(stderr, "leakwatch keys import: line %d: %v\n", line, err)
			failed = true
			continue
		}
		fps = append(fps, fp.String())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(stderr, "leakwatch keys import: read stdin:", err)
		return 1
	}
	if failed {
		return 1
	}
	if len(fps) == 0 {
		fmt.Fprintln(stderr, "leakwatch keys import: no secrets on stdin")
		return 2
	}
	var metas []importMeta
	if *csvPath != "" {
		metas, err = readImportCSV(*csvPath)
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
			metas = append(metas, importMeta{Name: n, Environment: *env, Provider: *provider})
		}
	}

	endpoint := strings.TrimRight(base.String(), "/") + "/api/v1/keys"
	client := &http.Client{Timeout: 30 * time.Second}
	code := 0
	for i, m := range metas {
		m.Fingerprint = fps[i]
		id, err := postKey(ctx, client, endpoint, *token, m)
		if err != nil {
			fmt.Fprintf(stderr, "leakwatch keys import: %q: %v\n", m.Name, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "registered key %d %q (%s)\n", id, m.Name, m.Fingerprint)
	}
	return code
}

func postKey(ctx context.Context, client *http.Client, endpoint, token string, m importMeta) (int64, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(reply, &e) == nil && e.Error.Message != "" {
			return 0, fmt.Errorf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, resp.StatusCode)
		}
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var k struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(reply, &k); err != nil {
		return 0, fmt.Errorf("decode reply: %w", err)
	}
	return k.ID, nil
}

// readImportCSV reads key metadata, one row per secret, columns named by
// the header.
func readImportCSV(path string) ([]importMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: want a header row and one row per secret", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "name", "environment", "provider", "owner", "notes", "tags", "max_age_days", "revocation_url":
			col[h] = i
		default:
			return nil, fmt.Errorf("%s: unknown column %q", path, h)
		}
	}
	if _, ok := col["name"]; !ok {
		return nil, fmt.Errorf("%s: a name column is required", path)
	}
	get := func(row []string, c string) string {
		if i, ok := col[c]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	var out []importMeta
	for n, row := range rows[1:] {
		m := importMeta{
			Name: get(row, "name"), Environment: get(row, "environment"), Provider: get(row, "provider"),
			Owner: get(row, "owner"), Notes: get(row, "notes"), RevocationURL: get(row, "revocation_url"),
		}
		if t := get(row, "tags"); t != "" {
			m.Tags = strings.Split(t, "|")
		}
		if v := get(row, "max_age_days"); v != "" {
			if m.MaxAgeDays, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("%s: row %d: max_age_days must be a whole number", path, n+2)
			}
		}
		out = append(out, m)
	}
	return out, nil
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
