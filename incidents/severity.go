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
// production keys, broad scopes and a wide public reach, and lowers it for
// development keys, read-only scopes and non-public exposures.
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
