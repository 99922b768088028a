package files

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// jsonFinding is one line of JSONL output.
type jsonFinding struct {
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Column      int    `json:"column"`
	Offset      int    `json:"offset"`
	Length      int    `json:"length"`
	Fingerprint string `json:"fingerprint"`
	Provider    string `json:"provider,omitempty"`
	Encoding    string `json:"encoding"`
	Preview     string `json:"preview"`
}

// WriteJSONL writes one JSON object per finding.
func WriteJSONL(w io.Writer, found []Finding) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, f := range found {
		err := enc.Encode(jsonFinding{
			Path: f.Path, Line: f.Line, Column: f.Column, Offset: f.Offset, Length: f.Length,
			Fingerprint: f.Fingerprint, Provider: f.Provider, Encoding: f.Encoding, Preview: f.Preview,
		})
		if err != nil {
			return fmt.Errorf("write jsonl: %w", err)
		}
	}
	return nil
}

// SARIF 2.1.0 subset used by WriteSARIF.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string            `json:"id"`
		Name                 string            `json:"name"`
		ShortDescription     sarifText         `json:"shortDescription"`
		FullDescription      sarifText         `json:"fullDescription"`
		Help                 sarifText         `json:"help"`
		DefaultConfiguration map[string]string `json:"defaultConfiguration"`
		Properties           map[string]any    `json:"properties"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             sarifText         `json:"message"`
		Locations           []sarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysical `json:"physicalLocation"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           sarifRegion   `json:"region"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine   int        `json:"startLine"`
		StartColumn int        `json:"startColumn"`
		Snippet     *sarifText `json:"snippet,omitempty"`
	}
)

// SARIFRuleID is the rule id of every SARIF result.
const SARIFRuleID = "leakwatch/registered-secret"

// WriteSARIF writes the findings as a SARIF 2.1.0 log that GitHub code
// scanning accepts.
func WriteSARIF(w io.Writer, found []Finding) error {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           "leakwatch",
			InformationURI: "https://github.com/leakwatch/leakwatch",
			Rules: []sarifRule{{
				ID:                   SARIFRuleID,
				Name:                 "RegisteredSecret",
				ShortDescription:     sarifText{"A registered secret is exposed"},
				FullDescription:      sarifText{"The exact bytes of a secret registered with Leakwatch occur in this file, plainly or inside an encoding."},
				Help:                 sarifText{"Revoke and rotate the secret, then remove it from the file and its history."},
				DefaultConfiguration: map[string]string{"level": "error"},
				Properties:           map[string]any{"tags": []string{"security", "secret"}, "security-severity": "9.0", "precision": "very-high"},
			}},
		}},
		Results: []sarifResult{},
	}
	for _, f := range found {
		what := "A registered secret"
		if f.Provider != "" {
			what = "A registered " + f.Provider + " secret"
		}
		run.Results = append(run.Results, sarifResult{
			RuleID:    SARIFRuleID,
			RuleIndex: 0,
			Level:     "error",
			Message:   sarifText{fmt.Sprintf("%s is exposed (encoding: %s). Fingerprint %s.", what, f.Encoding, f.Fingerprint)},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: sarifURI(f.Path)},
				Region:           sarifRegion{StartLine: f.Line, StartColumn: f.Column, Snippet: &sarifText{f.Preview}},
			}}},
			PartialFingerprints: map[string]string{"leakwatchFingerprint/v1": fmt.Sprintf("%s:%d", f.Fingerprint, f.Line)},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
	if err != nil {
		return fmt.Errorf("write sarif: %w", err)
	}
	return nil
}

// sarifURI turns a path into a SARIF artifact URI: relative paths stay
// relative (forward slashes, percent-escaped), absolute ones become file URIs.
func sarifURI(p string) string {
	if p == "-" {
		return "stdin"
	}
	p = filepath.ToSlash(p)
	p = strings.TrimPrefix(p, "./")
	u := url.URL{Path: p}
	if filepath.IsAbs(p) {
		u.Scheme = "file"
	}
	return u.String()
}
