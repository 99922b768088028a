package pastetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// NotWhitelisted is the body Pastebin's scraping API sends (with HTTP 200)
// to an IP that is not whitelisted.
const NotWhitelisted = "YOUR IP: 127.0.0.1 DOES NOT HAVE ACCESS. VISIT: https://pastebin.com/doc_scraping_api TO GET ACCESS!"

// pastebinNotFound is the item endpoint's answer for a deleted paste.
const pastebinNotFound = "Error, we cannot find this paste."

// Paste is one paste on a fake site.
type Paste struct {
	Key    string
	Title  string
	User   string
	Syntax string
	Date   time.Time
	Text   string
}

// Pastebin is a fake of Pastebin's scraping API (scrape.pastebin.com):
// /api_scraping.php?limit=N lists the newest pastes, /api_scrape_item.php?i=KEY
// returns one paste's raw text.
type Pastebin struct {
	*httptest.Server
	faults
	pastes      []Paste // newest first
	deleted     map[string]bool
	whitelisted bool
}

// NewPastebin starts a fake that answers a whitelisted IP.
func NewPastebin() *Pastebin {
	p := &Pastebin{deleted: map[string]bool{}, whitelisted: true}
	p.requests = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api_scraping.php", p.list)
	mux.HandleFunc("GET /api_scrape_item.php", p.item)
	p.Server = newServer(mux)
	return p
}

// Publish adds pastes, given oldest first.
func (p *Pastebin) Publish(ps ...Paste) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range ps {
		p.pastes = append([]Paste{x}, p.pastes...)
	}
}

// Delete removes a paste: the listing drops it and the item endpoint answers
// as Pastebin does for a deleted paste.
func (p *Pastebin) Delete(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted[key] = true
}

// SetWhitelisted switches between answering and refusing our IP.
func (p *Pastebin) SetWhitelisted(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.whitelisted = ok
}

func (p *Pastebin) list(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.whitelisted {
		p.requests[r.URL.Path]++
		io.WriteString(w, NotWhitelisted) //nolint:errcheck
		return
	}
	if p.intercept(w, r) {
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 {
		limit = 50
	}
	limit = min(limit, 250)
	out := []map[string]string{}
	for _, x := range p.pastes {
		if len(out) == limit {
			break
		}
		if p.deleted[x.Key] {
			continue
		}
		out = append(out, map[string]string{
			"scrape_url": p.URL + "/api_scrape_item.php?i=" + x.Key,
			"full_url":   "https://pastebin.com/" + x.Key,
			"date":       strconv.FormatInt(x.Date.Unix(), 10),
			"key":        x.Key,
			"size":       strconv.Itoa(len(x.Text)),
			"expire":     "0",
			"title":      x.Title,
			"syntax":     x.Syntax,
			"user":       x.User,
		})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(out) //nolint:errcheck
}

func (p *Pastebin) item(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[r.URL.Path]++
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !p.whitelisted {
		io.WriteString(w, NotWhitelisted) //nolint:errcheck
		return
	}
	key := r.URL.Query().Get("i")
	for _, x := range p.pastes {
		if x.Key == key && !p.deleted[key] {
			io.WriteString(w, x.Text) //nolint:errcheck
			return
		}
	}
	// Pastebin answers 200 with an error line.
	fmt.Fprint(w, pastebinNotFound)
}
