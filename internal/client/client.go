package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrBaseURL is returned by New for a base URL that is not the http(s) URL
// of a Leakwatch installation.
var ErrBaseURL = errors.New("the API URL must be the http(s) URL of Leakwatch")

// ErrNoToken is returned by New without an API token.
var ErrNoToken = errors.New("an API token is required")

// Client calls one Leakwatch installation's API with one API token.
type Client struct {
	base  string // scheme://host[/prefix], no trailing slash
	token string
	http  *http.Client
}

// TimeoutDefault bounds one API call, so a hung server fails the command
// instead of hanging it.
const TimeoutDefault = 30 * time.Second

// New returns a client of the installation at baseURL (e.g.
// https://leakwatch.example.com) acting with token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if baseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrBaseURL
	}
	if token == "" {
		return nil, ErrNoToken
	}
	return &Client{
		base:  strings.TrimRight(u.String(), "/"),
		token: token,
		http:  &http.Client{Timeout: TimeoutDefault},
	}, nil
}

// Key is a key to register: the API's key fields. Fingerprint is the
// output of matcher.Compute, never the secret.
type Key struct {
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

// APIError is a refusal the API explained with its error body.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the API's error code, e.g. "forbidden"
	Message string // safe to show
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// AddKey registers k (POST /api/v1/keys) and returns the new key's id.
// A refusal is an *APIError.
func (c *Client) AddKey(ctx context.Context, k Key) (int64, error) {
	var reply struct {
		ID int64 `json:"id"`
	}
	if err := c.post(ctx, "/api/v1/keys", k, http.StatusCreated, &reply); err != nil {
		return 0, err
	}
	return reply.ID, nil
}

// post sends body as JSON and decodes the reply into out when the status
// is want.
func (c *Client) post(ctx context.Context, path string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	endpoint := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("POST %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: read reply: %w", endpoint, err)
	}
	if resp.StatusCode != want {
		apiErr := &APIError{Status: resp.StatusCode}
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(reply, &e) == nil && e.Error.Message != "" {
			apiErr.Code, apiErr.Message = e.Error.Code, e.Error.Message
		}
		return apiErr
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("POST %s: decode reply: %w", endpoint, err)
	}
	return nil
}
