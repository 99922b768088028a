package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeStartsEmbeddedPostgres runs the real binary where no PostgreSQL
// answers (a private network namespace, the Unix socket directory hidden by
// a private mount) and requires it to start an embedded server from the
// installed binaries, migrate, report ready and stop cleanly on SIGTERM. It
// needs root (for the namespaces) and installed PostgreSQL binaries.
func TestServeStartsEmbeddedPostgres(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network and mount namespaces")
	}
	for _, tool := range []string{"unshare", "ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		t.Skip("needs installed PostgreSQL binaries")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildBinary(t, dir)
	script := `set -e
ip link set lo up
mount -t tmpfs none /var/run/postgresql 2>/dev/null || true
"$LW_BIN" serve & pid=$!
for i in $(seq 1 120); do
	if curl -fsS http://127.0.0.1:18090/readyz >/dev/null 2>&1; then ready=1; break; fi
	kill -0 $pid 2>/dev/null || break
	sleep 0.25
done
[ -n "$ready" ] || { echo NOT-READY; kill -9 $pid 2>/dev/null; exit 1; }
echo READY
start=$(date +%s)
kill -TERM $pid
wait $pid
echo "EXIT=$? IN=$(( $(date +%s) - start ))s"
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-nm", "sh", "-c", script)
	cmd.Env = append(os.Environ(),
		"LW_BIN="+bin,
		"DATABASE_URL=",
		"LEAKWATCH_DATA_DIR="+filepath.Join(dir, "data"),
		"LEAKWATCH_EMBEDDED_PG_PORT=5439",
		"LEAKWATCH_HTTP_ADDR=127.0.0.1:18090",
		"LEAKWATCH_GITHUB_POLL=false",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if strings.Contains(out.String(), "unshare failed") || strings.Contains(out.String(), "Operation not permitted") {
			t.Skip("namespaces not permitted here:", strings.TrimSpace(out.String()))
		}
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{"starting an embedded one", "embedded PostgreSQL running", "applied migration", "READY", "EXIT=0"} {
		if !strings.Contains(log, want) {
			t.Fatalf("output lacks %q:\n%s", want, log)
		}
	}
	m := regexp.MustCompile(`IN=(\d+)s`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no shutdown time in output:\n%s", log)
	}
	if secs, _ := strconv.Atoi(m[1]); secs > 10 {
		t.Errorf("SIGTERM to exit took %ds, want at most 10s", secs)
	}
}
