package deployments

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml as `docker compose` does (the
// Compose specification's own loader and schema) with every profile, and
// checks what keeps a laptop deployment honest.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithName("leakwatch"), cli.WithProfiles([]string{"*"}), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "leakwatch", "demo"} {
		if _, ok := p.Services[name]; !ok {
			t.Fatalf("services = %v, want %s", p.ServiceNames(), name)
		}
	}

	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
		if s.Restart == "" || s.Restart == types.RestartPolicyNo {
			t.Errorf("%s: restart policy %q, want one that restarts", name, s.Restart)
		}
		if name == "postgres" {
			continue
		}
		// Leakwatch containers run hardened, as on Kubernetes, and wait for
		// a healthy database.
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") ||
			!slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: user %q, read-only %v, cap_drop %v, security_opt %v", name, s.User, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		if dep, ok := s.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for a healthy postgres", name)
		}
		// The image has no shell: healthchecks exec the binary.
		if s.HealthCheck != nil && (s.HealthCheck.Test[0] != "CMD" || s.HealthCheck.Test[1] != "/usr/local/bin/leakwatch" || s.HealthCheck.Test[2] != "probe") {
			t.Errorf("%s healthcheck = %v, want the binary's probe command", name, s.HealthCheck.Test)
		}
		// Secrets come from files, never from the compose file itself.
		for k, v := range s.Environment {
			for _, secret := range []string{"LEAKWATCH_GITHUB_TOKENS", "LEAKWATCH_ENCRYPTION_KEY", "LEAKWATCH_WEBHOOK_SIGNING_KEY", "LEAKWATCH_OIDC_CLIENT_SECRET"} {
				if k == secret {
					t.Errorf("%s sets %s in the compose file; use %s_FILE and a secret", name, k, k)
				}
			}
			if strings.HasSuffix(k, "_FILE") && (v == nil || !strings.HasPrefix(*v, "/run/secrets/")) {
				t.Errorf("%s: %s is not a compose secret", name, k)
			}
		}
	}

	lw := p.Services["leakwatch"]
	if key := lw.Environment["LEAKWATCH_ENCRYPTION_KEY_FILE"]; key == nil || *key != "/run/secrets/encryption_key" {
		t.Errorf("the encryption key does not come from a secret file: %v", key)
	}
	var secrets []string
	for _, s := range lw.Secrets {
		secrets = append(secrets, s.Source)
	}
	if !slices.Contains(secrets, "encryption_key") || !slices.Contains(secrets, "github_tokens") {
		t.Errorf("leakwatch secrets = %v", secrets)
	}
	for name, s := range p.Secrets {
		if !strings.Contains(s.File, "/secrets/") {
			t.Errorf("secret %s is read from %s, outside the git-ignored secrets/ folder", name, s.File)
		}
	}
	// The ops listener is for operators: published on loopback only.
	for _, port := range lw.Ports {
		if port.Target == 9090 && port.HostIP != "127.0.0.1" {
			t.Errorf("ops port published on %q, want 127.0.0.1", port.HostIP)
		}
	}

	demo := p.Services["demo"]
	if !slices.Equal(demo.Profiles, []string{"demo"}) || !slices.Equal([]string(demo.Command), []string{"demo"}) {
		t.Errorf("demo: profiles %v, command %v; want the demo profile running `leakwatch demo`", demo.Profiles, demo.Command)
	}
	if u := demo.Environment["DATABASE_URL"]; u == nil || !strings.Contains(*u, "/leakwatch_demo") {
		t.Errorf("demo database = %v, want its own leakwatch_demo", u)
	}
	if slices.Contains(lw.Profiles, "demo") || len(lw.Profiles) != 0 {
		t.Errorf("leakwatch has profiles %v; a plain `docker compose up` must start it", lw.Profiles)
	}
}

// TestSecretsAreIgnored: the folder compose reads tokens and keys from can
// never be committed by mistake, nor copied into an image build.
func TestSecretsAreIgnored(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{".git", "/secrets"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	for _, path := range []string{"secrets/github_tokens", "secrets/encryption_key"} {
		cmd := exec.Command("git", "check-ignore", "-q", "--no-index", path)
		cmd.Dir = ".."
		if err := cmd.Run(); err != nil {
			t.Errorf("git does not ignore %s: %v", path, err)
		}
	}
}
