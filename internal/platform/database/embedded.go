package database

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

type embeddedServer struct {
	pg  *embeddedpostgres.EmbeddedPostgres
	url string
	log *slog.Logger
}

func (s *embeddedServer) stop() {
	if err := s.pg.Stop(); err != nil {
		s.log.Error("stop embedded PostgreSQL", slog.Any("error", err))
	}
}

// startEmbedded starts a PostgreSQL server whose cluster lives under dataDir:
//
//	dataDir/pgdata    the cluster
//	dataDir/runtime   scratch, wiped by every start
//	dataDir/bin       privilege-dropping shims (root only)
//	dataDir/password  the generated superuser password (0600)
func startEmbedded(ctx context.Context, dataDir string, port uint32, logger *slog.Logger) (*embeddedServer, error) {
	if dataDir == "" {
		return nil, errors.New("no data directory (LEAKWATCH_DATA_DIR)")
	}
	if port == 0 {
		port = 5433
	}
	if !freePort(port) {
		return nil, fmt.Errorf("port %d is taken (set LEAKWATCH_EMBEDDED_PG_PORT)", port)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	password, err := loadOrCreatePassword(filepath.Join(dataDir, "password"))
	if err != nil {
		return nil, err
	}

	cfg := embeddedpostgres.DefaultConfig().
		Port(port).
		Database(DefaultName).
		Username("postgres").
		Password(password).
		DataPath(filepath.Join(dataDir, "pgdata")).
		RuntimePath(filepath.Join(dataDir, "runtime")).
		CachePath(filepath.Join(dataDir, "cache")).
		StartTimeout(60 * time.Second).
		// TCP on loopback only; no socket in a directory we may not own.
		StartParameters(map[string]string{"unix_socket_directories": "", "listen_addresses": "127.0.0.1"}).
		Logger(logWriter{logger})

	if binDir, major := installedBinaries(); binDir != "" {
		cfg = cfg.Version(versionFor(major))
		if os.Geteuid() == 0 {
			// initdb and postgres refuse to run as root: run them through
			// shims that drop to an unprivileged user.
			shims, err := writeRootShims(dataDir, binDir)
			if err != nil {
				return nil, err
			}
			cfg = cfg.BinariesPath(shims)
			logger.Info("running embedded PostgreSQL as an unprivileged user", slog.String("binaries", binDir))
		} else {
			cfg = cfg.BinariesPath(filepath.Dir(binDir))
		}
	} else if os.Geteuid() == 0 {
		return nil, errors.New("no installed PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and pg_config); as root they are required because initdb refuses root: install postgresql or set DATABASE_URL")
	} else {
		logger.Info("no installed PostgreSQL binaries found; embedded-postgres will download them")
	}

	pg := embeddedpostgres.NewDatabase(cfg)
	done := make(chan error, 1)
	go func() { done <- pg.Start() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     fmt.Sprintf("127.0.0.1:%d", port),
		Path:     "/" + DefaultName,
		RawQuery: "sslmode=disable",
	}
	return &embeddedServer{pg: pg, url: u.String(), log: logger}, nil
}

func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read embedded PostgreSQL password: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	pw := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write embedded PostgreSQL password: %w", err)
	}
	return pw, nil
}

// installedBinaries finds the newest installed server's bin directory.
func installedBinaries() (binDir string, major int) {
	var dirs []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(matches, func(i, j int) bool { return majorOf(matches[i]) > majorOf(matches[j]) })
	dirs = append(matches, dirs...)
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) && fileExists(filepath.Join(d, "postgres")) {
			m := majorOf(d)
			if m == 0 {
				m = majorFromBinary(d)
			}
			return d, m
		}
	}
	return "", 0
}

func majorOf(binDir string) int {
	m, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return m
}

func majorFromBinary(binDir string) int {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0
	}
	m, _ := strconv.Atoi(strings.Split(f[len(f)-1], ".")[0])
	return m
}

// versionFor maps a major version to the library's version so its data
// directory check (PG_VERSION) agrees with the installed server.
func versionFor(major int) embeddedpostgres.PostgresVersion {
	if major == 0 {
		return embeddedpostgres.V15
	}
	return embeddedpostgres.PostgresVersion(fmt.Sprintf("%d.0.0", major))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeRootShims writes dataDir/bin/{initdb,pg_ctl,postgres} scripts that
// hand the tree to an unprivileged user and exec the real binary as that user.
// It returns the directory to use as the library's BinariesPath.
func writeRootShims(dataDir, realBin string) (string, error) {
	uid, gid, name, err := unprivilegedUser()
	if err != nil {
		return "", err
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", errors.New("running as root needs setpriv (util-linux) to drop privileges for PostgreSQL")
	}
	if err := checkTraversable(dataDir); err != nil {
		return "", fmt.Errorf("PostgreSQL will run as %s: %w", name, err)
	}
	if err := os.Chown(dataDir, uid, gid); err != nil {
		return "", fmt.Errorf("hand data directory to %s: %w", name, err)
	}
	if pg := filepath.Join(dataDir, "pgdata"); fileExists(pg) {
		if err := chownTree(pg, uid, gid); err != nil {
			return "", fmt.Errorf("hand cluster to %s: %w", name, err)
		}
	}
	root := filepath.Join(dataDir, "shims")
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("create shim directory: %w", err)
	}
	runtime := filepath.Join(dataDir, "runtime")
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		script := fmt.Sprintf("#!/bin/sh\n# Written by leakwatch: PostgreSQL refuses to run as root.\nchown -R %d:%d %q 2>/dev/null\nexec %q --reuid=%d --regid=%d --clear-groups %q \"$@\"\n",
			uid, gid, runtime, setpriv, uid, gid, filepath.Join(realBin, tool))
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			return "", fmt.Errorf("write shim %s: %w", tool, err)
		}
	}
	return root, nil
}

// checkTraversable makes sure every parent of dir lets others through, since
// the server runs as another user.
func checkTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("data directory %s is inside %s, which other users cannot enter; choose another LEAKWATCH_DATA_DIR", abs, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func unprivilegedUser() (uid, gid int, name string, err error) {
	for _, n := range []string{"postgres", "nobody"} {
		u, lerr := user.Lookup(n)
		if lerr != nil {
			continue
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		return uid, gid, n, nil
	}
	return 0, 0, "", errors.New("no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// logWriter sends the embedded server's output to the logger at debug level.
type logWriter struct{ l *slog.Logger }

var _ io.Writer = logWriter{}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.l.Debug("postgres", slog.String("line", line))
		}
	}
	return len(p), nil
}
