package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/internal/platform/jobs"
	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Config is every setting of the service, filled once from the environment.
type Config struct {
	DatabaseURL     string
	DatabasePooler  string // "none" or "transaction" (PgBouncer pool_mode=transaction)
	DataDir         string
	EmbeddedPGPort  uint32
	AutoMigrate     bool
	HTTPAddr        string
	OpsAddr         string // operators' listener (health, metrics, River UI); "off": none
	BaseURL         string
	GitHubAPIURL    string
	GitHubTokens    []string
	GitHubPoll      bool
	GitHubMinPoll   time.Duration
	Roles           []string
	LogFormat       string
	LogLevel        slog.Level
	WorkersCrawl    int
	WorkersScan     int
	WorkersIncident int
	WorkersNotify   int
	KeyReload       time.Duration
	ShutdownTimeout time.Duration
	JobTimeout      time.Duration
	JobRescueAfter  time.Duration

	// GitHub crawler: the raw content host (wiki pages) and scan bounds.
	GitHubRawURL        string
	GitHubMaxPatchBytes int
	GitHubTreeMaxFiles  int
	GitHubTreeMaxBytes  int
	GitHubPushTimeout   time.Duration
	ContentDedupTTL     time.Duration
	PasteSources        paste.Config
	// Sign-in: session lifetime and optional OpenID Connect.
	SessionTTL       time.Duration
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string

	// Outgoing webhooks (revocation requests).
	WebhookSigningKeys []webhook.SigningKey
	WebhookAllowNets   []netip.Prefix
	OutboundProxy      *url.URL // egress proxy of every outgoing request; nil: none
	WebhookTimeout     time.Duration

	// Encryption seals secrets at rest (Slack bot tokens and signing
	// secrets); nil without LEAKWATCH_ENCRYPTION_KEY.
	Encryption *secretbox.Box
	// SlackAPIURL is the Slack Web API base ("" : https://slack.com/api/).
	SlackAPIURL string

	// RotatedRetention: how long a secret a key was rotated away from is
	// still matched (recorded on the key's last incident, no alert).
	RotatedRetention time.Duration
	// GH Archive: backfill of the public feed's gaps and live coverage
	// (GHArchiveURL "": off).
	GHArchiveURL          string
	GHArchivePublishDelay time.Duration
	GHArchiveGiveUpAfter  time.Duration
	GHArchiveCoverage     bool
	// GitHub events poller: adaptive or obey, and the share of the tokens'
	// hourly budget polling may spend.
	GitHubPollMode  string
	GitHubPollShare float64
}

// Roles a process can take.
const (
	RoleWeb     = "web"
	RoleWorker  = "worker"
	RoleCrawler = "crawler"
)

// Has reports whether the process takes role r.
func (c Config) Has(r string) bool { return slices.Contains(c.Roles, r) }

// setting describes one environment variable: its default, its help line,
// and how it lands in Config. Secret settings also accept NAME_FILE.
type setting struct {
	env    string
	def    string
	secret bool
	help   string
	set    func(c *Config, v string) error
}

var settings = []setting{
	{env: "DATABASE_URL", secret: true, help: "PostgreSQL connection URL. Unset: use the local server (127.0.0.1:5432 or its Unix socket, creating database leakwatch), or else start an embedded PostgreSQL.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New("must be a postgres:// URL")
			}
			c.DatabaseURL = v
			return nil
		}},
	{env: "LEAKWATCH_DATABASE_POOLER", def: poolerNone, help: "What DATABASE_URL reaches: none (PostgreSQL itself, or a pooler in session mode) or transaction (a pooler in transaction mode, e.g. PgBouncer pool_mode=transaction). transaction: River polls for jobs (PollOnly), key changes reach workers by polling the key-set version every 0.5 s and the dashboard's live updates by polling every second instead of LISTEN/NOTIFY, and queries use no named prepared statements.",
		set: func(c *Config, v string) error {
			if v != poolerNone && v != poolerTransaction {
				return errors.New("must be none or transaction")
			}
			c.DatabasePooler = v
			return nil
		}},
	{env: "LEAKWATCH_DATA_DIR", def: defaultDataDir(), help: "Where the embedded PostgreSQL keeps its data (only used without a server).",
		set: func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			c.DataDir = v
			return nil
		}},
	{env: "LEAKWATCH_EMBEDDED_PG_PORT", def: "5433", help: "Loopback port of the embedded PostgreSQL.",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return errors.New("must be a port number")
			}
			c.EmbeddedPGPort = uint32(n)
			return nil
		}},
	{env: "LEAKWATCH_AUTO_MIGRATE", def: "true", help: "Apply pending migrations when serve, or a command that needs the schema (orgs, tokens, keys add, secrets), starts; if false, they refuse an outdated schema and name `leakwatch migrate`.",
		set: boolSetting(func(c *Config, b bool) { c.AutoMigrate = b })},
	{env: "LEAKWATCH_HTTP_ADDR", def: ":8080", help: "Address the web role listens on.",
		set: func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New("must be host:port, e.g. :8080")
			}
			c.HTTPAddr = v
			return nil
		}},
	{env: "LEAKWATCH_OPS_ADDR", def: opsAddrDefault, help: "Address of the operators' listener, on every role: /healthz, /readyz with detail, /metrics and River UI at /ops/river. Keep it off the public network. off: no listener.",
		set: func(c *Config, v string) error {
			if v != opsOff {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("must be host:port, e.g. :9090, or off")
				}
			}
			c.OpsAddr = v
			return nil
		}},
	{env: "LEAKWATCH_BASE_URL", help: "Public URL of the dashboard, used in links sent out (Slack, sign-in links). Unset: the address served, http://localhost:PORT with LEAKWATCH_HTTP_ADDR's port (or its host, if it names one).",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return urlSetting(func(c *Config, v string) { c.BaseURL = strings.TrimRight(v, "/") })(c, v)
		}},
	{env: "LEAKWATCH_GITHUB_API_URL", def: "https://api.github.com/", help: "GitHub REST API base URL.",
		set: urlSetting(func(c *Config, v string) { c.GitHubAPIURL = v })},
	{env: "LEAKWATCH_GITHUB_TOKENS", secret: true, help: "Comma-separated GitHub tokens the crawler spreads its requests over. Unset: unauthenticated (60 requests/hour).",
		set: func(c *Config, v string) error {
			c.GitHubTokens = nil
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					if strings.ContainsAny(t, " \t\r\n") {
						return errors.New("tokens must not contain white space")
					}
					c.GitHubTokens = append(c.GitHubTokens, t)
				}
			}
			return nil
		}},
	{env: "LEAKWATCH_GITHUB_POLL", def: "true", help: "Poll the GitHub public events feed (crawler role).",
		set: boolSetting(func(c *Config, b bool) { c.GitHubPoll = b })},
	{env: "LEAKWATCH_GITHUB_MIN_POLL_INTERVAL", def: "0s", help: "Poll at least this often even if GitHub asks for longer (0: GitHub's X-Poll-Interval). For tests and fakes.",
		set: durationSetting(func(c *Config, d time.Duration) { c.GitHubMinPoll = d })},
	{env: "LEAKWATCH_GITHUB_POLL_MODE", def: "adaptive", help: "How the public events feed is paced: adaptive (probe page 1 every 0.25-2 s as the stream's rate asks, within the polling budget) or obey (GitHub's X-Poll-Interval, 60 s: about 5% of the stream is seen).",
		set: func(c *Config, v string) error {
			if v != "adaptive" && v != "obey" {
				return errors.New("must be adaptive or obey")
			}
			c.GitHubPollMode = v
			return nil
		}},
	{env: "LEAKWATCH_GITHUB_POLL_BUDGET_SHARE", def: "0.15", help: "Share of the GitHub tokens' hourly budget the events poller may spend (304s are free); the rest is left for fetching pushes.",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || f > 1 {
				return errors.New("must be a number in (0, 1]")
			}
			c.GitHubPollShare = f
			return nil
		}},
	{env: "LEAKWATCH_GITHUB_RAW_URL", def: "https://raw.githubusercontent.com/", help: "Host serving raw GitHub content (wiki pages are read from wiki/{owner}/{repo}/{page}.md).",
		set: urlSetting(func(c *Config, v string) { c.GitHubRawURL = v })},
	{env: "LEAKWATCH_GITHUB_MAX_PATCH_BYTES", def: "1048576", help: "A pushed file whose patch is larger is skipped and counted, not scanned.",
		set: byteSetting(func(c *Config, n int) { c.GitHubMaxPatchBytes = n })},
	{env: "LEAKWATCH_GITHUB_TREE_MAX_FILES", def: "1000", help: "At most this many files of a repository made public are scanned.",
		set: intSetting(func(c *Config, n int) { c.GitHubTreeMaxFiles = n })},
	{env: "LEAKWATCH_GITHUB_TREE_MAX_BYTES", def: "20971520", help: "At most this many bytes of a repository made public are scanned.",
		set: byteSetting(func(c *Config, n int) { c.GitHubTreeMaxBytes = n })},
	{env: "LEAKWATCH_GITHUB_PUSH_TIMEOUT", def: "45s", help: "How long one slice of a push or repository-tree job may run; after two thirds of it the rest goes to a follow-up job. At most LEAKWATCH_JOB_RESCUE_AFTER, which a crashed job waits for in any case.",
		set: durationSetting(func(c *Config, d time.Duration) { c.GitHubPushTimeout = d })},
	{env: "LEAKWATCH_CONTENT_DEDUP_TTL", def: "1h", help: "How long scanned content is remembered by hash, so the same patch pushed to many forks is scanned once (0: no de-duplication).",
		set: durationSetting(func(c *Config, d time.Duration) { c.ContentDedupTTL = d })},
	{env: "LEAKWATCH_PASTE_SOURCES_FILE", help: "JSON file of paste sources to crawl (gist, pastebin, generic JSON/RSS/Atom feeds), each with its own interval and limits. Unset: none.",
		set: func(c *Config, v string) error {
			pc, err := loadPasteSources(v)
			c.PasteSources = pc
			return err
		}},
	{env: "LEAKWATCH_ROLES", def: "web,worker,crawler", help: "Roles this process takes: any of web, worker, crawler.",
		set: func(c *Config, v string) error {
			roles, err := parseRoles(v)
			c.Roles = roles
			return err
		}},
	{env: "LEAKWATCH_LOG_FORMAT", def: "text", help: "Log format: text or json.",
		set: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.LogFormat = v
			return nil
		}},
	{env: "LEAKWATCH_LOG_LEVEL", def: "info", help: "Log level: debug, info, warn or error.",
		set: func(c *Config, v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
		}},
	{env: "LEAKWATCH_WORKERS_CRAWL", def: "64", help: "Concurrent jobs on the crawl queue (crawler role): GitHub pushes, wiki pages and trees are fetched there, each waiting on GitHub, so keep it high.", set: intSetting(func(c *Config, n int) { c.WorkersCrawl = n })},
	{env: "LEAKWATCH_WORKERS_SCAN", def: "4", help: "Concurrent jobs on the scan queue (worker role).", set: intSetting(func(c *Config, n int) { c.WorkersScan = n })},
	{env: "LEAKWATCH_WORKERS_INCIDENTS", def: "4", help: "Concurrent jobs on the incidents queue (worker role).", set: intSetting(func(c *Config, n int) { c.WorkersIncident = n })},
	{env: "LEAKWATCH_WORKERS_NOTIFY", def: "4", help: "Concurrent jobs on the notify queue (worker role).", set: intSetting(func(c *Config, n int) { c.WorkersNotify = n })},
	{env: "LEAKWATCH_KEY_RELOAD_INTERVAL", def: "30s", help: "Full reload of the key registry as a safety net behind change notifications.",
		set: durationSetting(func(c *Config, d time.Duration) { c.KeyReload = d })},
	{env: "LEAKWATCH_ROTATED_RETENTION", def: "2160h", help: "How long (default 90 days) a secret a key was rotated away from is still matched: a sighting is recorded on the key's last incident as seen after rotation, with no alert. 0 stops matching it at rotation.",
		set: durationSetting(func(c *Config, d time.Duration) { c.RotatedRetention = d })},
	{env: "LEAKWATCH_JOB_TIMEOUT", def: "30s", help: "How long a job may run unless its worker says otherwise (push and tree slices: LEAKWATCH_GITHUB_PUSH_TIMEOUT). At most 1m, so a crashed job runs again within two minutes.",
		set: durationSetting(func(c *Config, d time.Duration) { c.JobTimeout = d })},
	{env: "LEAKWATCH_JOB_RESCUE_AFTER", def: "60s", help: "A job still marked running this long after it started, because its process died, is run again (River checks every 30s, so a killed process's jobs run again within about 97s at the default). Must be above every job timeout.",
		set: durationSetting(func(c *Config, d time.Duration) { c.JobRescueAfter = d })},
	{env: "LEAKWATCH_SHUTDOWN_TIMEOUT", def: "8s", help: "How long running work may take to finish on SIGTERM before it is cancelled.",
		set: durationSetting(func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
	{env: "LEAKWATCH_SESSION_TTL", def: "12h", help: "How long a dashboard sign-in lasts.",
		set: durationSetting(func(c *Config, d time.Duration) { c.SessionTTL = d })},
	{env: "LEAKWATCH_OIDC_ISSUER", help: "OpenID Connect issuer URL for single sign-on (its discovery document is fetched at start). Unset: password and link sign-in only.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return urlSetting(func(c *Config, v string) { c.OIDCIssuer = v })(c, v)
		}},
	{env: "LEAKWATCH_OIDC_CLIENT_ID", help: "OpenID Connect client ID; the redirect URL to register is LEAKWATCH_BASE_URL/auth/oidc/callback.",
		set: func(c *Config, v string) error { c.OIDCClientID = v; return nil }},
	{env: "LEAKWATCH_OIDC_CLIENT_SECRET", secret: true, help: "OpenID Connect client secret.",
		set: func(c *Config, v string) error { c.OIDCClientSecret = v; return nil }},
	{env: "LEAKWATCH_WEBHOOK_SIGNING_KEY", secret: true, help: "Ed25519 key(s) signing outgoing webhooks (v1a), as whsk_<base64 seed>, comma-separated; the first signs, all are published at /.well-known/leakwatch/webhook-keys. Unset: a key is generated once and kept in the database.",
		set: func(c *Config, v string) error {
			keys, err := webhook.ParseSigningKeys(v)
			c.WebhookSigningKeys = keys
			return err
		}},
	{env: "LEAKWATCH_WEBHOOK_ALLOW_NETS", help: "Comma-separated CIDR prefixes every outgoing request (webhooks, Slack, GitHub, paste sites, OIDC) may reach although private, loopback, link-local or shared (e.g. 10.0.0.0/8 for an internal revocation service or GitHub Enterprise). Unset: public addresses only.",
		set: func(c *Config, v string) error {
			nets, err := webhook.ParseAllowlist(v)
			c.WebhookAllowNets = nets
			return err
		}},
	{env: "LEAKWATCH_OUTBOUND_PROXY", help: "Egress proxy (http://host:port) for every outgoing request, for networks that allow the internet only through one; its address must be in LEAKWATCH_WEBHOOK_ALLOW_NETS. Addresses in that list are reached directly. URLs are still checked before sending, but names that resolve to internal addresses are then the proxy's to refuse. HTTPS_PROXY is not read. Unset: direct.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an http(s) URL, e.g. http://proxy.internal:3128")
			}
			c.OutboundProxy = u
			return nil
		}},
	{env: "LEAKWATCH_WEBHOOK_TIMEOUT", def: "10s", help: "Timeout of one outgoing webhook attempt.",
		set: durationSetting(func(c *Config, d time.Duration) { c.WebhookTimeout = d })},
	{env: "LEAKWATCH_ENCRYPTION_KEY", secret: true, help: "AES-256 key(s) sealing secrets at rest (Slack bot tokens, signing secrets), as ID:<base64 of 32 bytes>, comma-separated; the first seals, all open (rotation: put the new key first, restart, re-seal, drop the old one). Unset: Slack bot connections cannot be stored.",
		set: func(c *Config, v string) error {
			box, err := secretbox.Parse(v)
			c.Encryption = box
			return err
		}},
	{env: "LEAKWATCH_SLACK_API_URL", help: "Slack Web API base URL, ending in /api/. Unset: https://slack.com/api/.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return urlSetting(func(c *Config, v string) { c.SlackAPIURL = v })(c, v)
		}},
	{env: "LEAKWATCH_GHARCHIVE_URL", def: "https://data.gharchive.org", help: "GH Archive base URL: each gap of the public feed is backfilled from its hourly files (YYYY-MM-DD-H.json.gz). off: no backfill and no coverage.",
		set: func(c *Config, v string) error {
			if v == "off" {
				c.GHArchiveURL = ""
				return nil
			}
			return urlSetting(func(c *Config, v string) { c.GHArchiveURL = v })(c, v)
		}},
	{env: "LEAKWATCH_GHARCHIVE_PUBLISH_DELAY", def: "1h", help: "How long after an hour ends its GH Archive file is first asked for (then every 10 minutes).",
		set: durationSetting(func(c *Config, d time.Duration) { c.GHArchivePublishDelay = d })},
	{env: "LEAKWATCH_GHARCHIVE_GIVE_UP_AFTER", def: "6h", help: "An hour's GH Archive file still missing this long after the hour ended makes the gaps needing it unrecoverable.",
		set: durationSetting(func(c *Config, d time.Duration) { c.GHArchiveGiveUpAfter = d })},
	{env: "LEAKWATCH_GHARCHIVE_COVERAGE", def: "on", help: "on: read every finished hour the poller was live in once from GH Archive, to report live coverage (about 100 MB to 1 GB of download an hour); off: read only hours with gaps.",
		set: func(c *Config, v string) error {
			switch v {
			case "on":
				c.GHArchiveCoverage = true
			case "off":
				c.GHArchiveCoverage = false
			default:
				return errors.New("must be on or off")
			}
			return nil
		}},
}

// LoadConfig reads every setting from getenv (os.Getenv in production).
// The first invalid value stops with an error naming its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	var c Config
	for _, s := range settings {
		v, err := lookup(s, getenv)
		if err != nil {
			return Config{}, err
		}
		if v == "" {
			v = s.def
		}
		if err := s.set(&c, v); err != nil {
			if s.secret {
				// Never echo a secret's value back.
				return Config{}, fmt.Errorf("%s: invalid value: %w", s.env, err)
			}
			return Config{}, fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
	}
	if c.BaseURL == "" {
		// Links must reach the port actually served, not a guessed one.
		c.BaseURL = baseURLFor(c.HTTPAddr)
	}
	if c.JobTimeout == 0 || c.JobRescueAfter <= c.JobTimeout {
		return Config{}, fmt.Errorf("LEAKWATCH_JOB_RESCUE_AFTER=%s must be longer than LEAKWATCH_JOB_TIMEOUT=%s (which must not be 0)", c.JobRescueAfter, c.JobTimeout)
	}
	if c.JobTimeout > jobs.MaxJobTimeout || c.GitHubPushTimeout > jobs.MaxJobTimeout {
		return Config{}, fmt.Errorf("LEAKWATCH_JOB_TIMEOUT=%s and LEAKWATCH_GITHUB_PUSH_TIMEOUT=%s must be at most %s: longer jobs hold a crash's recovery as long", c.JobTimeout, c.GitHubPushTimeout, jobs.MaxJobTimeout)
	}
	if c.GitHubPushTimeout > c.JobRescueAfter {
		// River would wait for the longer one anyway: crash recovery would
		// take as long as a push slice.
		return Config{}, fmt.Errorf("LEAKWATCH_GITHUB_PUSH_TIMEOUT=%s must not be longer than LEAKWATCH_JOB_RESCUE_AFTER=%s", c.GitHubPushTimeout, c.JobRescueAfter)
	}
	return c, nil
}

func lookup(s setting, getenv func(string) string) (string, error) {
	v := getenv(s.env)
	if !s.secret {
		return strings.TrimSpace(v), nil
	}
	file := getenv(s.env + "_FILE")
	if file == "" {
		return strings.TrimSpace(v), nil
	}
	if v != "" {
		return "", fmt.Errorf("%s and %s_FILE are both set; set one", s.env, s.env)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", s.env, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func parseRoles(v string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(v, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if r != RoleWeb && r != RoleWorker && r != RoleCrawler {
			return nil, fmt.Errorf("unknown role %q (want web, worker or crawler)", r)
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("no role given")
	}
	return roles, nil
}

func boolSetting(f func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		f(c, b)
		return nil
	}
}

func intSetting(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10000 {
			return errors.New("must be a whole number from 0 to 10000")
		}
		f(c, n)
		return nil
	}
}

// byteSetting accepts a size in bytes, from 1 byte to 16 GiB.
func byteSetting(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 1<<34 {
			return errors.New("must be a size in bytes, from 1 to 17179869184")
		}
		f(c, int(n))
		return nil
	}
}

func durationSetting(f func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a duration such as 30s or 5m")
		}
		f(c, d)
		return nil
	}
}

func urlSetting(f func(*Config, string)) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("must be an absolute http(s) URL")
		}
		f(c, v)
		return nil
	}
}

// defaultDataDir is the user's data folder; root's lives under /var/lib so an
// unprivileged PostgreSQL can reach it.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/leakwatch"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "leakwatch")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "leakwatch")
	}
	return filepath.Join(os.TempDir(), "leakwatch")
}

// settingsHelp lists every setting for `leakwatch help`.
func settingsHelp() string { return settingsHelpFor(allSettings...) }

// settingsHelpFor lists the named settings ("*": all), in the table's order.
func settingsHelpFor(names ...string) string {
	var b strings.Builder
	for _, s := range settings {
		if !slices.Contains(names, "*") && !slices.Contains(names, s.env) {
			continue
		}
		def := s.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(&b, "  %s\n      %s\n      default: %s", s.env, s.help, def)
		if s.secret {
			fmt.Fprintf(&b, "; secret: %s_FILE reads it from a file", s.env)
		}
		b.WriteString("\n")
	}
	return b.String()
}
