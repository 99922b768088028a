package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/jobs"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte("tok-a, tok-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string // substring; the variable's name must be in it
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, c Config) {
			if c.HTTPAddr != ":8080" || c.GitHubAPIURL != "https://api.github.com/" || !c.AutoMigrate || len(c.Roles) != 3 || c.LogFormat != "text" ||
				c.GitHubPollMode != "adaptive" || c.GitHubPollShare != 0.15 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "base URL follows the served port", env: map[string]string{"LEAKWATCH_HTTP_ADDR": ":9090"}, check: func(t *testing.T, c Config) {
			if c.BaseURL != "http://localhost:9090" {
				t.Errorf("base URL = %q", c.BaseURL)
			}
		}},
		{name: "base URL follows the served host", env: map[string]string{"LEAKWATCH_HTTP_ADDR": "127.0.0.1:8181"}, check: func(t *testing.T, c Config) {
			if c.BaseURL != "http://127.0.0.1:8181" {
				t.Errorf("base URL = %q", c.BaseURL)
			}
		}},
		{name: "base URL set", env: map[string]string{"LEAKWATCH_HTTP_ADDR": ":9090", "LEAKWATCH_BASE_URL": "https://lw.example.com/"}, check: func(t *testing.T, c Config) {
			if c.BaseURL != "https://lw.example.com" {
				t.Errorf("base URL = %q", c.BaseURL)
			}
		}},
		{name: "roles", env: map[string]string{"LEAKWATCH_ROLES": "web, worker"}, check: func(t *testing.T, c Config) {
			if !c.Has(RoleWeb) || !c.Has(RoleWorker) || c.Has(RoleCrawler) {
				t.Errorf("roles = %v", c.Roles)
			}
		}},
		{name: "tokens from file", env: map[string]string{"LEAKWATCH_GITHUB_TOKENS_FILE": tokenFile}, check: func(t *testing.T, c Config) {
			if strings.Join(c.GitHubTokens, "|") != "tok-a|tok-b" {
				t.Errorf("tokens = %v", c.GitHubTokens)
			}
		}},
		{name: "durations", env: map[string]string{"LEAKWATCH_SHUTDOWN_TIMEOUT": "3s"}, check: func(t *testing.T, c Config) {
			if c.ShutdownTimeout != 3*time.Second {
				t.Errorf("timeout = %v", c.ShutdownTimeout)
			}
		}},
		{name: "crash recovery within two minutes", env: nil, check: func(t *testing.T, c Config) {
			if c.JobRescueAfter != jobs.RescueAfterDefault || c.JobTimeout > jobs.MaxJobTimeout || c.GitHubPushTimeout > jobs.MaxJobTimeout {
				t.Errorf("rescue after %s, job timeout %s, push timeout %s; want %s and timeouts within %s",
					c.JobRescueAfter, c.JobTimeout, c.GitHubPushTimeout, jobs.RescueAfterDefault, jobs.MaxJobTimeout)
			}
			if b := jobs.RecoveryBound(c.JobRescueAfter); b > 2*time.Minute {
				t.Errorf("a killed process's jobs run again within %s, want 2m", b)
			}
		}},
		{name: "push slice longer than rescue", env: map[string]string{"LEAKWATCH_GITHUB_PUSH_TIMEOUT": "5m"}, wantErr: "LEAKWATCH_GITHUB_PUSH_TIMEOUT"},
		{name: "job rescue before timeout", env: map[string]string{"LEAKWATCH_JOB_TIMEOUT": "5m", "LEAKWATCH_JOB_RESCUE_AFTER": "2m"}, wantErr: "LEAKWATCH_JOB_RESCUE_AFTER"},
		{name: "bad role", env: map[string]string{"LEAKWATCH_ROLES": "web,cook"}, wantErr: "LEAKWATCH_ROLES"},
		{name: "bad addr", env: map[string]string{"LEAKWATCH_HTTP_ADDR": "8080"}, wantErr: "LEAKWATCH_HTTP_ADDR"},
		{name: "bad log format", env: map[string]string{"LEAKWATCH_LOG_FORMAT": "xml"}, wantErr: "LEAKWATCH_LOG_FORMAT"},
		{name: "bad log level", env: map[string]string{"LEAKWATCH_LOG_LEVEL": "loud"}, wantErr: "LEAKWATCH_LOG_LEVEL"},
		{name: "poll mode and budget", env: map[string]string{"LEAKWATCH_GITHUB_POLL_MODE": "obey", "LEAKWATCH_GITHUB_POLL_BUDGET_SHARE": "0.3"}, check: func(t *testing.T, c Config) {
			if c.GitHubPollMode != "obey" || c.GitHubPollShare != 0.3 {
				t.Fatalf("poll mode %q, share %v", c.GitHubPollMode, c.GitHubPollShare)
			}
		}},
		{name: "bad poll mode", env: map[string]string{"LEAKWATCH_GITHUB_POLL_MODE": "fast"}, wantErr: "LEAKWATCH_GITHUB_POLL_MODE"},
		{name: "bad poll budget share", env: map[string]string{"LEAKWATCH_GITHUB_POLL_BUDGET_SHARE": "1.5"}, wantErr: "LEAKWATCH_GITHUB_POLL_BUDGET_SHARE"},
		{name: "bad bool", env: map[string]string{"LEAKWATCH_AUTO_MIGRATE": "maybe"}, wantErr: "LEAKWATCH_AUTO_MIGRATE"},
		{name: "bad api url", env: map[string]string{"LEAKWATCH_GITHUB_API_URL": "api.github.com"}, wantErr: "LEAKWATCH_GITHUB_API_URL"},
		{name: "bad database url", env: map[string]string{"DATABASE_URL": "mysql://u:hunter2@h/db"}, wantErr: "DATABASE_URL"},
		{name: "secret and file", env: map[string]string{"LEAKWATCH_GITHUB_TOKENS": "x", "LEAKWATCH_GITHUB_TOKENS_FILE": tokenFile}, wantErr: "both set"},
		{name: "missing file", env: map[string]string{"DATABASE_URL_FILE": "/nonexistent/leakwatch"}, wantErr: "DATABASE_URL_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error echoes a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if code := run(t.Context(), []string{"help"}, nil, &out, &out); code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) {
			t.Errorf("help lacks %s", s.env)
		}
	}
	for name := range commands() {
		if !strings.Contains(out.String(), name) {
			t.Errorf("help lacks command %s", name)
		}
	}
}

// TestCommandHelp: every command's --help exits 0 and lists the settings it
// reads and no other; subcommands show their own usage, not their siblings'.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    []string
		want    []string // in the output
		notWant []string
	}{
		{[]string{"serve", "--help"}, []string{"--roles", "LEAKWATCH_GITHUB_TOKENS", "LEAKWATCH_WEBHOOK_TIMEOUT"}, nil},
		{[]string{"demo", "--help"}, []string{"leakwatch_demo", "LEAKWATCH_HTTP_ADDR", "DATABASE_URL"}, []string{"LEAKWATCH_GITHUB_TOKENS", "LEAKWATCH_BASE_URL"}},
		{[]string{"migrate", "--help"}, []string{"status", "DATABASE_URL"}, []string{"LEAKWATCH_GITHUB_TOKENS", "LEAKWATCH_HTTP_ADDR"}},
		{[]string{"orgs", "create", "--help"}, []string{"--owner", "--json", "LEAKWATCH_BASE_URL", "DATABASE_URL"}, []string{"set-slack", "--webhook-url", "LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"orgs", "set-slack", "--help"}, []string{"--webhook-url", "hooks.slack.com"}, []string{"--owner", "LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"orgs", "set-revocation", "--help"}, []string{"--url", "--hmac"}, []string{"--owner", "LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"tokens", "create", "--help"}, []string{"--org", "--scope", "--name", "DATABASE_URL"}, []string{"LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"secrets", "reseal", "--help"}, []string{"LEAKWATCH_ENCRYPTION_KEY", "DATABASE_URL"}, []string{"LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"keys", "--help"}, []string{"keys import", "keys add"}, []string{"LEAKWATCH_GITHUB_TOKENS"}},
		{[]string{"fingerprint", "--help"}, []string{"--allow-weak"}, []string{"DATABASE_URL"}},
		{[]string{"scan", "--help"}, []string{"--fingerprints"}, []string{"DATABASE_URL"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var out, errOut strings.Builder
			if code := run(t.Context(), tc.args, strings.NewReader(""), &out, &errOut); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String()+errOut.String(), w) {
					t.Errorf("output has %q:\n%s%s", w, out.String(), errOut.String())
				}
			}
		})
	}
}
