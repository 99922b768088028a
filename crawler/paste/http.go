package paste

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// userAgent names us to paste sites.
const userAgent = "leakwatch-paste-crawler (+https://github.com/leakwatch/leakwatch)"

// httpGet fetches rawURL and returns at most maxBytes of its body (truncated
// says more was there). 404 and 410 are ErrGone, 401 and 403 ErrUnauthorised.
func httpGet(ctx context.Context, c *http.Client, rawURL string, maxBytes int64) (body []byte, truncated bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.Do(req)
	if err != nil {
		// Errors end up in logs and in the health API: a feed URL may carry
		// an API key in its query, so only scheme, host and path are kept.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return nil, false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, false, fmt.Errorf("HTTP %d: %w", resp.StatusCode, ErrGone)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, fmt.Errorf("HTTP %d: %w", resp.StatusCode, ErrUnauthorised)
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) //nolint:errcheck
		return nil, false, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return body[:maxBytes], true, nil
	}
	return body, false, nil
}

// redactURL drops a URL's query, fragment and user info.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
