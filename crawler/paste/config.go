package paste

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

// Source kinds.
const (
	KindGist     = "gist"
	KindPastebin = "pastebin"
	KindFeed     = "feed"
)

// Defaults for SourceConfig.
const (
	IntervalDefault = 60 * time.Second
	LimitDefault    = 100
	MaxBytesDefault = 1 << 20 // scanned per text; the rest is counted, not scanned
	// PastebinURLDefault is the scraping API's host.
	PastebinURLDefault = "https://scrape.pastebin.com"
)

// Config is the paste crawler's configuration file
// (LEAKWATCH_PASTE_SOURCES_FILE).
type Config struct {
	Sources []SourceConfig `json:"sources"`
}

// SourceConfig configures one source.
type SourceConfig struct {
	Type     string   `json:"type"` // gist, pastebin or feed
	Name     string   `json:"name"` // default: the type; required for feeds
	URL      string   `json:"url"`  // pastebin: API host; feed: the feed
	Interval Duration `json:"interval"`
	Limit    int      `json:"limit"`     // pastebin: items per listing; gist: pages of 100 (max 30)
	MaxBytes int64    `json:"max_bytes"` // per text
	// FetchInterval spaces this process's fetches of the source's pastes
	// (Pastebin asks for about one per second). Default: 1s for Pastebin,
	// none otherwise.
	FetchInterval Duration `json:"fetch_interval"`
	// Format of a feed: json, rss or atom.
	Format string `json:"format"`
	// JSON maps a JSON feed's fields (dot paths) to a paste.
	JSON *JSONMapping `json:"json,omitempty"`
	// RawURLTemplate builds the raw text's URL of a feed item from {id},
	// {link} and {link_path} (e.g. "https://paste.example/raw/{id}").
	// Empty: the item's link (RSS/Atom) or raw_url field (JSON).
	RawURLTemplate string `json:"raw_url_template"`
}

// JSONMapping names where a JSON feed keeps each field, as dot paths into an
// item ("user.login"). Items is the path of the array in the document (empty:
// the document is the array).
type JSONMapping struct {
	Items   string `json:"items"`
	ID      string `json:"id"`
	Title   string `json:"title"`
	Author  string `json:"author"`
	Date    string `json:"date"`
	URL     string `json:"url"`
	RawURL  string `json:"raw_url"`
	Content string `json:"content"` // inline text; then nothing is fetched
}

// Duration is a time.Duration written as "60s" in JSON.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`durations are strings such as "60s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`) })

// ParseConfig reads and validates a configuration file's content, filling
// defaults.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("paste sources: %w", err)
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		if err := s.validate(); err != nil {
			return Config{}, fmt.Errorf("paste source %d (%s): %w", i+1, s.Name, err)
		}
		if seen[s.Name] {
			return Config{}, fmt.Errorf("paste source name %q is used twice", s.Name)
		}
		seen[s.Name] = true
	}
	return c, nil
}

func (s *SourceConfig) validate() error {
	s.Type = strings.ToLower(strings.TrimSpace(s.Type))
	if s.Name == "" && s.Type != KindFeed {
		s.Name = s.Type
	}
	if !nameRE().MatchString(s.Name) {
		return errors.New("name must be 1-63 lower-case letters, digits, '.', '_' or '-'")
	}
	if s.Interval == 0 {
		s.Interval = Duration(IntervalDefault)
	}
	if time.Duration(s.Interval) < time.Second {
		return errors.New("interval must be at least 1s")
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = MaxBytesDefault
	}
	if s.MaxBytes < 0 {
		return errors.New("max_bytes must be positive")
	}
	switch s.Type {
	case KindGist:
		if s.Limit == 0 {
			s.Limit = gistMaxPages
		}
		if s.Limit < 0 || s.Limit > gistMaxPages {
			return fmt.Errorf("limit (pages of 100) must be 1-%d", gistMaxPages)
		}
		if s.URL != "" {
			return errors.New("gists use the GitHub API URL (LEAKWATCH_GITHUB_API_URL); url must be empty")
		}
	case KindPastebin:
		if s.FetchInterval == 0 {
			s.FetchInterval = Duration(time.Second)
		}
		if s.URL == "" {
			s.URL = PastebinURLDefault
		}
		if s.Limit == 0 {
			s.Limit = LimitDefault
		}
		if s.Limit < 1 || s.Limit > 250 {
			return errors.New("limit must be 1-250")
		}
		if err := checkURL(s.URL); err != nil {
			return err
		}
	case KindFeed:
		if err := checkURL(s.URL); err != nil {
			return err
		}
		s.Format = strings.ToLower(s.Format)
		switch s.Format {
		case "json":
			if s.JSON == nil || s.JSON.ID == "" {
				return errors.New("a json feed needs a json mapping with at least id")
			}
			if s.JSON.Content == "" && s.JSON.RawURL == "" && s.RawURLTemplate == "" {
				return errors.New("a json feed needs json.content, json.raw_url or raw_url_template")
			}
		case "rss", "atom":
			if s.JSON != nil {
				return errors.New("json mapping is for json feeds only")
			}
		default:
			return errors.New("format must be json, rss or atom")
		}
		if s.Limit < 0 {
			return errors.New("limit must not be negative")
		}
	default:
		return fmt.Errorf("unknown type %q (want gist, pastebin or feed)", s.Type)
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http(s) URL", raw)
	}
	return nil
}

// Deps are what sources need from the process.
type Deps struct {
	// GitHub is the crawler's shared GitHub client (token pool, rate
	// limits); required for a gist source.
	GitHub *gh.Client
	// HTTP fetches paste sites: the deployment's guarded client (feeds name
	// the URLs fetched, so a hostile feed must not reach internal
	// addresses); nil: webhook.NewHTTPClient with no allowlist, 30 s.
	HTTP *http.Client
}

// NewSources builds the configured sources.
func NewSources(c Config, deps Deps) ([]Source, error) {
	if deps.HTTP == nil {
		deps.HTTP = webhook.FollowRedirects(webhook.NewHTTPClient(webhook.Guard{}, 30*time.Second), webhook.Guard{}, 3)
	}
	var out []Source
	for _, sc := range c.Sources {
		switch sc.Type {
		case KindGist:
			if deps.GitHub == nil {
				return nil, fmt.Errorf("paste source %s: no GitHub client", sc.Name)
			}
			out = append(out, NewGist(sc, deps.GitHub))
		case KindPastebin:
			out = append(out, NewPastebin(sc, deps.HTTP))
		case KindFeed:
			out = append(out, NewFeed(sc, deps.HTTP))
		}
	}
	return out, nil
}
