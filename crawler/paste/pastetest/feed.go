package pastetest

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Feed formats.
const (
	FormatJSON       = "json"        // raw text at each item's "raw" URL
	FormatJSONInline = "json-inline" // text inline in each item's "content"
	FormatRSS        = "rss"
	FormatAtom       = "atom"
)

// Feed is a fake paste site publishing its recent pastes at /recent in one
// format, with each paste's page at /p/{key} and raw text at /raw/{key}.
type Feed struct {
	*httptest.Server
	faults
	format  string
	pastes  []Paste // newest first
	deleted map[string]bool
	gone    int // status for deleted pastes' raw text: 404 or 410
	// hold, while open, keeps raw-text requests waiting (see Hold).
	hold    chan struct{}
	holding int
	// failRaw raw-text requests still to answer with failStatus.
	failRaw, failStatus int
}

// FailRaw makes the next n raw-text requests answer status.
func (f *Feed) FailRaw(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRaw, f.failStatus = n, status
}

// Hold makes raw-text requests hang, as a stalled site does, until release
// is called or the client goes away; Holding says how many hang now.
func (f *Feed) Hold() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.hold = ch
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hold == ch {
			close(ch)
			f.hold = nil
		}
	}
}

// Holding returns how many raw-text requests are held now.
func (f *Feed) Holding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holding
}

// NewFeed starts a fake site serving format.
func NewFeed(format string) *Feed {
	f := &Feed{format: format, deleted: map[string]bool{}, gone: http.StatusNotFound}
	f.requests = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /recent", f.recent)
	mux.HandleFunc("GET /raw/{key}", f.raw)
	f.Server = newServer(mux)
	return f
}

// FeedURL is the feed's URL.
func (f *Feed) FeedURL() string { return f.URL + "/recent" }

// Publish adds pastes, given oldest first.
func (f *Feed) Publish(ps ...Paste) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range ps {
		f.pastes = append([]Paste{x}, f.pastes...)
	}
}

// Delete makes a paste's raw text answer status (404 or 410); the feed
// keeps listing it, as caches do.
func (f *Feed) Delete(key string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted[key] = true
	f.gone = status
}

func (f *Feed) link(key string) string { return f.URL + "/p/" + key }

func (f *Feed) recent(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.intercept(w, r) {
		return
	}
	switch f.format {
	case FormatJSON, FormatJSONInline:
		type user struct {
			Name string `json:"name"`
		}
		type item struct {
			ID      string `json:"id"`
			Title   string `json:"title"`
			User    user   `json:"user"`
			Created int64  `json:"created"`
			URL     string `json:"url"`
			Raw     string `json:"raw,omitempty"`
			Content string `json:"content,omitempty"`
		}
		doc := struct {
			Status string `json:"status"`
			Data   struct {
				Pastes []item `json:"pastes"`
			} `json:"data"`
		}{Status: "success"}
		doc.Data.Pastes = []item{}
		for _, x := range f.pastes {
			it := item{ID: x.Key, Title: x.Title, User: user{x.User}, Created: x.Date.Unix(), URL: f.link(x.Key)}
			if f.format == FormatJSONInline {
				it.Content = x.Text
			} else {
				it.Raw = f.URL + "/raw/" + x.Key
			}
			doc.Data.Pastes = append(doc.Data.Pastes, it)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(doc) //nolint:errcheck
	case FormatRSS:
		type item struct {
			Title   string `xml:"title"`
			Link    string `xml:"link"`
			GUID    string `xml:"guid"`
			PubDate string `xml:"pubDate"`
			Creator string `xml:"dc:creator"`
		}
		var items []item
		for _, x := range f.pastes {
			items = append(items, item{Title: x.Title, Link: f.link(x.Key), GUID: f.link(x.Key), PubDate: x.Date.UTC().Format(time.RFC1123Z), Creator: x.User})
		}
		doc := struct {
			XMLName xml.Name `xml:"rss"`
			Version string   `xml:"version,attr"`
			DC      string   `xml:"xmlns:dc,attr"`
			Channel struct {
				Title string `xml:"title"`
				Link  string `xml:"link"`
				Items []item `xml:"item"`
			} `xml:"channel"`
		}{Version: "2.0", DC: "http://purl.org/dc/elements/1.1/"}
		doc.Channel.Title, doc.Channel.Link, doc.Channel.Items = "Recent pastes", f.URL, items
		writeXML(w, "application/rss+xml; charset=utf-8", doc)
	case FormatAtom:
		type link struct {
			Href string `xml:"href,attr"`
			Rel  string `xml:"rel,attr,omitempty"`
		}
		type entry struct {
			ID        string `xml:"id"`
			Title     string `xml:"title"`
			Links     []link `xml:"link"`
			Published string `xml:"published"`
			Updated   string `xml:"updated"`
			Author    struct {
				Name string `xml:"name"`
			} `xml:"author"`
		}
		doc := struct {
			XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
			Title   string   `xml:"title"`
			ID      string   `xml:"id"`
			Updated string   `xml:"updated"`
			Entries []entry  `xml:"entry"`
		}{Title: "Recent pastes", ID: f.URL + "/recent", Updated: time.Now().UTC().Format(time.RFC3339)}
		for _, x := range f.pastes {
			e := entry{ID: "tag:" + f.Listener.Addr().String() + ",2026:" + x.Key, Title: x.Title,
				Links:     []link{{Href: f.link(x.Key), Rel: "alternate"}, {Href: f.URL + "/raw/" + x.Key, Rel: "enclosure"}},
				Published: x.Date.UTC().Format(time.RFC3339), Updated: x.Date.UTC().Format(time.RFC3339)}
			e.Author.Name = x.User
			doc.Entries = append(doc.Entries, e)
		}
		writeXML(w, "application/atom+xml; charset=utf-8", doc)
	}
}

func writeXML(w http.ResponseWriter, ctype string, doc any) {
	w.Header().Set("Content-Type", ctype)
	io.WriteString(w, xml.Header) //nolint:errcheck
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	enc.Encode(doc) //nolint:errcheck
}

func (f *Feed) raw(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if hold := f.hold; hold != nil {
		f.holding++
		f.mu.Unlock()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		f.mu.Lock()
		f.holding--
		if r.Context().Err() != nil {
			f.mu.Unlock()
			return
		}
	}
	defer f.mu.Unlock()
	f.requests["/raw"]++
	if f.failRaw > 0 {
		f.failRaw--
		http.Error(w, http.StatusText(f.failStatus), f.failStatus)
		return
	}
	key := r.PathValue("key")
	if f.deleted[key] {
		http.Error(w, "paste not found", f.gone)
		return
	}
	for _, x := range f.pastes {
		if x.Key == key {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, x.Text) //nolint:errcheck
			return
		}
	}
	http.NotFound(w, r)
}
