package incidents

import "strings"

// Severity ranks an incident; it sets the acknowledgement SLA.
type Severity string

// Severities, most urgent first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

var severityLevels = []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Rank orders severities: low 0 … critical 3; -1 for anything else.
func (s Severity) Rank() int {
	for i, l := range severityLevels {
		if l == s {
			return i
		}
	}
	return -1
}

// SeverityInput is what severity is computed from: the key (provider,
// environment, scopes note) and the exposure (source kind, visibility, reach).
type SeverityInput struct {
	Provider    string // matcher provider: "aws", "github", "stripe", "pem", …
	Environment string // "production", "staging", "development" or ""
	Scopes      string // free text about the key's powers ("admin", "read-only", …)
	Source      string // "github", "gist", "pastebin", …
	Public      bool   // the exposure is publicly readable
	Reach       int    // audience size where known (stars, followers); 0 unknown
}

// highImpactProviders grant access to infrastructure, code or money.
var highImpactProviders = map[string]bool{
	"aws": true, "gcp": true, "azure": true, "github": true, "gitlab": true, "stripe": true,
	"pem": true, "slack": true, "openai": true, "anthropic": true, "twilio": true, "sendgrid": true,
	"npm": true, "pypi": true, "digitalocean": true, "heroku": true,
}

// ComputeSeverity starts from the provider (high for providers that grant
// access to infrastructure, code or money, medium otherwise), raises it for
// production keys, broad scopes and a wide public reach (1,000 or more stars
// plus forks), and lowers it for development keys, read-only scopes and
// non-public exposures. The source kind decides how exposure is known:
// GitHub sightings carry the repository's visibility and reach (the event's
// public flag, then the repository itself); gists and paste sites are
// public with no measure of reach. Every public source is harvested by
// attackers within minutes, so the kind itself moves no level.
func ComputeSeverity(in SeverityInput) Severity {
	level := 1 // medium
	if highImpactProviders[strings.ToLower(in.Provider)] {
		level = 2
	}
	switch strings.ToLower(in.Environment) {
	case "production", "prod":
		level++
	case "development", "dev", "test":
		level--
	}
	scopes := strings.ToLower(in.Scopes)
	switch {
	case strings.Contains(scopes, "read-only"), strings.Contains(scopes, "readonly"):
		level--
	case strings.Contains(scopes, "admin"), strings.Contains(scopes, "root"), strings.Contains(scopes, "write"):
		level++
	}
	if !in.Public {
		level--
	} else if in.Reach >= 1000 {
		level++
	}
	level = max(0, min(level, len(severityLevels)-1))
	return severityLevels[level]
}
