package paste

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Feed reads any paste site that publishes its recent pastes as a JSON
// document (fields located by a JSONMapping), an RSS 2.0 channel or an Atom
// feed. The text comes from each item's raw URL (a JSON field, or
// RawURLTemplate applied to the item), or inline from the JSON item itself.
//
// Raw URLs are fetched only from the feed's own host or the template's host,
// so a hostile item cannot make the crawler fetch an internal address.
type Feed struct {
	cfg       SourceConfig
	http      *http.Client
	feedURL   *url.URL
	rawHosts  map[string]bool
	maxListed int64

	mu     sync.Mutex
	inline map[string][]byte // key → text of inline-content items of the last listing
}

// NewFeed returns a generic feed source. cfg must have passed ParseConfig.
func NewFeed(cfg SourceConfig, c *http.Client) *Feed {
	f := &Feed{cfg: cfg, http: c, rawHosts: map[string]bool{}, maxListed: 16 << 20}
	f.feedURL, _ = url.Parse(cfg.URL)
	f.rawHosts[f.feedURL.Host] = true
	if cfg.RawURLTemplate != "" {
		if u, err := url.Parse(strings.NewReplacer("{id}", "x", "{link}", "", "{link_path}", "").Replace(cfg.RawURLTemplate)); err == nil && u.Host != "" {
			f.rawHosts[u.Host] = true
		}
	}
	return f
}

// Name implements Source.
func (f *Feed) Name() string { return f.cfg.Name }

// Kind implements Source.
func (f *Feed) Kind() string { return KindFeed }

// Interval implements Source.
func (f *Feed) Interval() time.Duration { return time.Duration(f.cfg.Interval) }

// FetchInterval is the configured spacing of fetches.
func (f *Feed) FetchInterval() time.Duration { return time.Duration(f.cfg.FetchInterval) }

// List implements Source.
func (f *Feed) List(ctx context.Context, _ Checkpoint) (Listing, error) {
	l, inline, err := f.list(ctx)
	if err != nil {
		return Listing{}, err
	}
	if f.cfg.JSON != nil && f.cfg.JSON.Content != "" {
		f.mu.Lock()
		f.inline = inline
		f.mu.Unlock()
	}
	return l, nil
}

func (f *Feed) list(ctx context.Context) (Listing, map[string][]byte, error) {
	body, truncated, err := httpGet(ctx, f.http, f.cfg.URL, f.maxListed)
	if err != nil {
		return Listing{}, nil, fmt.Errorf("feed %s: %w", f.cfg.Name, err)
	}
	if truncated {
		return Listing{}, nil, fmt.Errorf("feed %s is larger than %d bytes: %w", f.cfg.Name, f.maxListed, ErrMalformed)
	}
	if !utf8.Valid(body) {
		return Listing{}, nil, fmt.Errorf("feed %s is not valid UTF-8: %w", f.cfg.Name, ErrMalformed)
	}
	var (
		l      Listing
		inline map[string][]byte
	)
	switch f.cfg.Format {
	case "json":
		l, inline, err = f.parseJSON(body)
	case "rss":
		l, err = f.parseRSS(body)
	case "atom":
		l, err = f.parseAtom(body)
	}
	if err != nil {
		return Listing{}, nil, fmt.Errorf("feed %s: %w", f.cfg.Name, err)
	}
	if f.cfg.Limit > 0 && len(l.Items) > f.cfg.Limit {
		l.Items = l.Items[:f.cfg.Limit]
	}
	return l, inline, nil
}

func (f *Feed) parseJSON(body []byte) (Listing, map[string][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Listing{}, nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	m := f.cfg.JSON
	arr, ok := lookupPath(doc, m.Items).([]any)
	if !ok {
		return Listing{}, nil, fmt.Errorf("no array at %q: %w", m.Items, ErrMalformed)
	}
	var l Listing
	inline := map[string][]byte{}
	for _, el := range arr {
		id := scalar(lookupPath(el, m.ID))
		if id == "" {
			l.Malformed++
			continue
		}
		it := Item{ID: id, Title: scalar(lookupPath(el, m.Title)), Author: scalar(lookupPath(el, m.Author)),
			URL: scalar(lookupPath(el, m.URL)), RawURL: scalar(lookupPath(el, m.RawURL))}
		it.Date = parseDate(scalar(lookupPath(el, m.Date)))
		if m.Content != "" {
			s, ok := lookupPath(el, m.Content).(string)
			if !ok {
				l.Malformed++
				continue
			}
			inline[it.Key()] = []byte(s)
			it.RawURL = ""
		} else if !f.resolveRaw(&it, it.URL) {
			l.Malformed++
			continue
		}
		if it.URL == "" {
			it.URL = it.RawURL
		}
		l.Items = append(l.Items, it)
	}
	return l, inline, nil
}

type rssDoc struct {
	Items []struct {
		Title   string `xml:"title"`
		Link    string `xml:"link"`
		GUID    string `xml:"guid"`
		PubDate string `xml:"pubDate"`
		Author  string `xml:"author"`
		Creator string `xml:"http://purl.org/dc/elements/1.1/ creator"`
	} `xml:"channel>item"`
}

func (f *Feed) parseRSS(body []byte) (Listing, error) {
	var doc rssDoc
	if err := xml.Unmarshal(body, &doc); err != nil {
		return Listing{}, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	var l Listing
	for _, e := range doc.Items {
		id := strings.TrimSpace(e.GUID)
		link := strings.TrimSpace(e.Link)
		if id == "" {
			id = link
		}
		author := strings.TrimSpace(e.Creator)
		if author == "" {
			author = strings.TrimSpace(e.Author)
		}
		it := Item{ID: id, Title: strings.TrimSpace(e.Title), Author: author, URL: link, Date: parseDate(e.PubDate)}
		if id == "" || !f.resolveRaw(&it, link) {
			l.Malformed++
			continue
		}
		l.Items = append(l.Items, it)
	}
	return l, nil
}

type atomDoc struct {
	Entries []struct {
		ID        string `xml:"id"`
		Title     string `xml:"title"`
		Updated   string `xml:"updated"`
		Published string `xml:"published"`
		Author    struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Links []struct {
			Href string `xml:"href,attr"`
			Rel  string `xml:"rel,attr"`
		} `xml:"link"`
	} `xml:"entry"`
}

func (f *Feed) parseAtom(body []byte) (Listing, error) {
	var doc atomDoc
	if err := xml.Unmarshal(body, &doc); err != nil {
		return Listing{}, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	var l Listing
	for _, e := range doc.Entries {
		var link string
		for _, ln := range e.Links {
			if ln.Rel == "" || ln.Rel == "alternate" {
				link = strings.TrimSpace(ln.Href)
				break
			}
		}
		id := strings.TrimSpace(e.ID)
		if id == "" {
			id = link
		}
		date := e.Published
		if date == "" {
			date = e.Updated
		}
		it := Item{ID: id, Title: strings.TrimSpace(e.Title), Author: strings.TrimSpace(e.Author.Name), URL: link, Date: parseDate(date)}
		if id == "" || !f.resolveRaw(&it, link) {
			l.Malformed++
			continue
		}
		l.Items = append(l.Items, it)
	}
	return l, nil
}

// resolveRaw sets it.RawURL from the template or the item's own raw URL
// (or link), and reports whether it is one we may fetch.
func (f *Feed) resolveRaw(it *Item, link string) bool {
	raw := it.RawURL
	if f.cfg.RawURLTemplate != "" {
		var linkPath, lastSeg string
		if u, err := url.Parse(link); err == nil && link != "" {
			linkPath = u.Path
			lastSeg = path.Base(strings.TrimRight(u.Path, "/"))
		}
		id := it.ID
		if f.cfg.Format != "json" {
			// RSS guids and Atom ids are often URLs or URNs; the paste's key
			// is the last segment of its link.
			id = lastSeg
		}
		if id == "" || id == "." || id == "/" {
			return false
		}
		raw = strings.NewReplacer("{id}", url.PathEscape(id), "{link}", link, "{link_path}", linkPath).Replace(f.cfg.RawURLTemplate)
	} else if raw == "" {
		raw = link
	}
	u, err := f.feedURL.Parse(raw) // relative links resolve against the feed
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !f.rawHosts[u.Host] {
		return false
	}
	it.RawURL = u.String()
	if it.URL != "" {
		if pu, err := f.feedURL.Parse(it.URL); err == nil {
			it.URL = pu.String()
		}
	}
	return true
}

// Fetch implements Source.
func (f *Feed) Fetch(ctx context.Context, it Item) ([]Part, error) {
	name := it.Title
	if name == "" {
		name = it.ID
	}
	if f.cfg.JSON != nil && f.cfg.JSON.Content != "" {
		text, err := f.inlineText(ctx, it.Key())
		if err != nil {
			return nil, err
		}
		truncated := int64(len(text)) > f.cfg.MaxBytes
		if truncated {
			text = text[:f.cfg.MaxBytes]
		}
		return []Part{{Name: name, URL: it.URL, Text: text, Truncated: truncated}}, nil
	}
	if it.RawURL == "" {
		return nil, fmt.Errorf("feed item %s has no raw URL: %w", it.ID, ErrMalformed)
	}
	body, truncated, err := httpGet(ctx, f.http, it.RawURL, f.cfg.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("feed %s paste %s: %w", f.cfg.Name, it.ID, err)
	}
	return []Part{{Name: name, URL: it.URL, Text: body, Truncated: truncated}}, nil
}

// inlineText returns an inline item's text from the last listing this
// process read, or reads the feed again (the text is never stored).
func (f *Feed) inlineText(ctx context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	text, ok := f.inline[key]
	f.mu.Unlock()
	if ok {
		return text, nil
	}
	_, inline, err := f.list(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.inline = inline
	f.mu.Unlock()
	if text, ok := inline[key]; ok {
		return text, nil
	}
	return nil, fmt.Errorf("feed %s no longer lists paste %s: %w", f.cfg.Name, key, ErrGone)
}

// lookupPath follows a dot path ("user.login") into decoded JSON; "" is
// the value itself.
func lookupPath(v any, p string) any {
	if p == "" {
		return v
	}
	for _, k := range strings.Split(p, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

// scalar renders a JSON string or number as text; anything else is "".
func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}

var dateLayouts = []string{time.RFC3339Nano, time.RFC1123Z, time.RFC1123, time.RFC822Z, time.RFC822, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// parseDate reads the date formats feeds use, including Unix seconds or
// milliseconds; zero if none fits.
func parseDate(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n > 1e12 {
			return time.UnixMilli(int64(n)).UTC()
		}
		return time.Unix(int64(n), 0).UTC()
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
