package web

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// Input bounds. Every body (form, multipart or JSON) is read through one
// limit; the server's timeouts cut off a client that trickles or pauses.
const (
	// MaxBodyBytesDefault bounds a request body; the largest legitimate one
	// (a key with notes and tags, a Slack interaction) is a few kilobytes.
	MaxBodyBytesDefault = 1 << 20
	// ReadHeaderTimeoutDefault and ReadTimeoutDefault bound how long a
	// client may take to send its headers, and its whole request.
	ReadHeaderTimeoutDefault = 10 * time.Second
	ReadTimeoutDefault       = 30 * time.Second
)

// HTTPServer returns an http.Server for the handler with the read
// timeouts set: a request whose body pauses longer than ReadTimeout is
// cut off instead of holding a connection and a goroutine.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// boundInput reads every request body through one limit (413 above it,
// before reading a byte when Content-Length says so) and refuses a NUL
// byte or invalid UTF-8 in the query, a form field or a JSON body with 400,
// so no handler and no SQL statement ever sees one. The body is checked
// from a bounded copy and handed on unread, so handlers that verify a
// signature over the raw bytes (Slack) still get them.
func (s *Server) boundInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if err := checkValues(req.URL.Query()); err != nil {
			return err
		}
		if req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		if req.ContentLength > s.maxBody {
			return errTooLarge(s.maxBody)
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge(s.maxBody)
		}
		if err != nil {
			return apiErr(http.StatusBadRequest, "invalid", "cannot read the request body")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		if err := checkBody(req.Header.Get("Content-Type"), body); err != nil {
			return err
		}
		return next(c)
	}
}

func errTooLarge(limit int64) error {
	return apiErr(http.StatusRequestEntityTooLarge, "too_large", "the request body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
}

// errBadText is the answer to a NUL byte or invalid UTF-8. A browser that
// posted a form keeps its input: going back shows the form as filled in.
var errBadText = apiErr(http.StatusBadRequest, "invalid_text",
	"the request contains a NUL byte or text that is not valid UTF-8; go back, correct the input and send it again")

func badText(s string) bool { return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 }

func checkValues(vs url.Values) error {
	for k, list := range vs {
		if badText(k) {
			return errBadText
		}
		for _, v := range list {
			if badText(v) {
				return errBadText
			}
		}
	}
	return nil
}

// checkBody checks the text of a form, multipart or JSON body; other
// types are left to their handlers (which refuse them with 415).
func checkBody(contentType string, body []byte) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		vs, err := url.ParseQuery(string(body))
		if err != nil {
			return apiErr(http.StatusBadRequest, "invalid", "malformed form body")
		}
		return checkValues(vs)
	case mt == "multipart/form-data":
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		// The body is already bounded and in memory: nothing goes to disk.
		f, err := r.ReadForm(int64(len(body)) + 1)
		if err != nil {
			return apiErr(http.StatusBadRequest, "invalid", "malformed multipart body")
		}
		defer func() { _ = f.RemoveAll() }()
		return checkValues(f.Value)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		// encoding/json would turn invalid UTF-8 into U+FFFD silently and
		// decode \u0000 into a NUL that PostgreSQL refuses.
		if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 || bytes.Contains(body, []byte(`\u0000`)) {
			return errBadText
		}
	}
	return nil
}
