package client

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadKeysCSV reads the metadata of keys to import, one row per secret,
// columns named by the header: name (required), environment, provider,
// owner, notes, tags (separated by |), max_age_days, revocation_url.
//
// It is the CLI's format for the user's file, parsed before anything is
// sent; the server checks the values as it checks any API request. It
// never holds secrets: the fingerprints come from stdin, row N describing
// secret N.
func ReadKeysCSV(r io.Reader) ([]Key, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, errors.New("want a header row and one row per secret")
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "name", "environment", "provider", "owner", "notes", "tags", "max_age_days", "revocation_url":
			col[h] = i
		default:
			return nil, fmt.Errorf("unknown column %q", h)
		}
	}
	if _, ok := col["name"]; !ok {
		return nil, errors.New("a name column is required")
	}
	get := func(row []string, c string) string {
		if i, ok := col[c]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	var out []Key
	for n, row := range rows[1:] {
		k := Key{
			Name: get(row, "name"), Environment: get(row, "environment"), Provider: get(row, "provider"),
			Owner: get(row, "owner"), Notes: get(row, "notes"), RevocationURL: get(row, "revocation_url"),
		}
		if t := get(row, "tags"); t != "" {
			k.Tags = strings.Split(t, "|")
		}
		if v := get(row, "max_age_days"); v != "" {
			if k.MaxAgeDays, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("row %d: max_age_days must be a whole number", n+2)
			}
		}
		out = append(out, k)
	}
	return out, nil
}
