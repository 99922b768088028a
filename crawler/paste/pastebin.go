package paste

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Pastebin reads Pastebin's scraping API, open only to accounts whose IP is
// whitelisted. Pastebin answers a refused IP with HTTP 200 and a plain-text
// body ("YOUR IP: … DOES NOT HAVE ACCESS…"): that is reported as
// ErrUnauthorised, never as an empty listing.
type Pastebin struct {
	cfg  SourceConfig
	base string
	http *http.Client
}

// NewPastebin returns the Pastebin source.
func NewPastebin(cfg SourceConfig, c *http.Client) *Pastebin {
	return &Pastebin{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), http: c}
}

// Name implements Source.
func (p *Pastebin) Name() string { return p.cfg.Name }

// Kind implements Source.
func (p *Pastebin) Kind() string { return KindPastebin }

// Interval implements Source.
func (p *Pastebin) Interval() time.Duration { return time.Duration(p.cfg.Interval) }

// FetchInterval is the configured spacing of fetches.
func (p *Pastebin) FetchInterval() time.Duration { return time.Duration(p.cfg.FetchInterval) }

// pastebinItem is one entry of api_scraping.php; every value is a string.
type pastebinItem struct {
	ScrapeURL string `json:"scrape_url"`
	FullURL   string `json:"full_url"`
	Date      string `json:"date"`
	Key       string `json:"key"`
	Size      string `json:"size"`
	Expire    string `json:"expire"`
	Title     string `json:"title"`
	Syntax    string `json:"syntax"`
	User      string `json:"user"`
}

// pastebinRefusal reports a plain-text refusal body as an error.
func pastebinRefusal(body []byte) error {
	b := bytes.TrimSpace(body)
	switch {
	case bytes.Contains(b, []byte("DOES NOT HAVE ACCESS")):
		return fmt.Errorf("pastebin: IP not whitelisted for the scraping API: %w", ErrUnauthorised)
	case bytes.Contains(b, []byte("not ready for scraping")):
		return fmt.Errorf("pastebin: %w", ErrNotReady)
	case bytes.HasPrefix(b, []byte("Error, we cannot find this paste")):
		return fmt.Errorf("pastebin: %w", ErrGone)
	}
	return nil
}

// List implements Source.
func (p *Pastebin) List(ctx context.Context, _ Checkpoint) (Listing, error) {
	body, _, err := httpGet(ctx, p.http, p.base+"/api_scraping.php?limit="+strconv.Itoa(p.cfg.Limit), 16<<20)
	if err != nil {
		return Listing{}, fmt.Errorf("pastebin listing: %w", err)
	}
	if err := pastebinRefusal(body); err != nil {
		return Listing{}, err
	}
	if !utf8.Valid(body) {
		return Listing{}, fmt.Errorf("pastebin listing is not valid UTF-8: %w", ErrMalformed)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return Listing{}, fmt.Errorf("pastebin listing: %v: %w", err, ErrMalformed)
	}
	var l Listing
	for _, r := range raw {
		var e pastebinItem
		if err := json.Unmarshal(r, &e); err != nil || e.Key == "" || strings.ContainsAny(e.Key, "/?&# ") {
			l.Malformed++
			continue
		}
		it := Item{ID: e.Key, Title: e.Title, Author: e.User, URL: e.FullURL, Syntax: e.Syntax}
		if it.URL == "" {
			it.URL = "https://pastebin.com/" + e.Key
		}
		if secs, err := strconv.ParseInt(e.Date, 10, 64); err == nil {
			it.Date = time.Unix(secs, 0).UTC()
		}
		it.Size, _ = strconv.ParseInt(e.Size, 10, 64)
		l.Items = append(l.Items, it)
	}
	return l, nil
}

// Fetch implements Source. The raw text always comes from the configured
// host, whatever scrape_url the listing carried.
func (p *Pastebin) Fetch(ctx context.Context, it Item) ([]Part, error) {
	body, truncated, err := httpGet(ctx, p.http, p.base+"/api_scrape_item.php?i="+url.QueryEscape(it.ID), p.cfg.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("pastebin paste %s: %w", it.ID, err)
	}
	// Refusals are short; a long paste that merely quotes one is text.
	if len(body) < 512 {
		if err := pastebinRefusal(body); err != nil {
			return nil, fmt.Errorf("paste %s: %w", it.ID, err)
		}
	}
	name := it.Title
	if name == "" {
		name = "Untitled"
	}
	return []Part{{Name: name, URL: it.URL, Text: body, Truncated: truncated}}, nil
}
