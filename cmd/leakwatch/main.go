// Command leakwatch runs the Leakwatch service and its tools. This package
// only wires: every piece of logic lives in the domain packages.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
	// settings are the environment variables the command reads, listed by
	// its --help; allSettings for serve.
	settings []string
}

// dbSettings are read by every command that opens the database.
var dbSettings = []string{"DATABASE_URL", "LEAKWATCH_DATA_DIR", "LEAKWATCH_EMBEDDED_PG_PORT", "LEAKWATCH_AUTO_MIGRATE", "LEAKWATCH_LOG_FORMAT", "LEAKWATCH_LOG_LEVEL"}

// allSettings marks a command reading every setting.
var allSettings = []string{"*"}

func commands() map[string]command {
	return map[string]command{
		"serve":       {"run the service (roles: web, worker, crawler)", runServeCommand, allSettings},
		"demo":        {"run the whole product offline against simulated GitHub, paste site, Slack and revocation endpoint", runDemo, demoSettings},
		"migrate":     {"apply database migrations; `migrate status` lists them", runMigrate, dbSettings},
		"keys":        {"register keys by fingerprint: `keys import --api URL --token T` (secrets on stdin), `keys add`", runKeys, dbSettings},
		"orgs":        {"manage organisations: `orgs create NAME --owner EMAIL`, `orgs set-slack`, `orgs set-revocation`", runOrgs, append(slices.Clone(dbSettings), "LEAKWATCH_HTTP_ADDR", "LEAKWATCH_BASE_URL", "LEAKWATCH_ENCRYPTION_KEY")},
		"tokens":      {"create API tokens: `tokens create --org ORG --scope read|write --name N`", runTokens, dbSettings},
		"fingerprint": {"print the fingerprint of each secret read from stdin", runFingerprint, nil},
		"scan":        {"scan files for registered secrets", runScan, nil},
		"secrets":     {"re-encrypt stored secrets after rotating LEAKWATCH_ENCRYPTION_KEY: `secrets reseal`", runSecrets, append(slices.Clone(dbSettings), "LEAKWATCH_ENCRYPTION_KEY")},
		"probe":       {"exit 0 if the ops listener is ready (container healthchecks): `probe [--path /healthz] [URL]`", runProbe, []string{"LEAKWATCH_OPS_ADDR"}},
		"version":     {"print the version", runVersion, nil},
		"help":        {"list commands and every setting", runHelp, nil},
	}
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		runHelp(ctx, nil, stdin, stdout, stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "leakwatch: unknown command %q (see `leakwatch help`)\n", name)
		return 2
	}
	code := cmd.run(ctx, args[1:], stdin, stdout, stderr)
	if code == 0 && len(cmd.settings) > 0 && wantsHelp(args[1:]) {
		// A command's help ends with the settings it reads, and only those.
		fmt.Fprintf(stdout, "\nSettings it reads (environment variables):\n%s", settingsHelpFor(cmd.settings...))
	}
	return code
}

func runHelp(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "Leakwatch watches public sources for registered secrets and drives each leak to containment.")
	fmt.Fprintln(stdout, "\nUsage: leakwatch COMMAND [flags]   (each command takes --help)\n\nCommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(stdout, "\nSettings (environment variables):\n%s", settingsHelp())
	return 0
}

func runVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "leakwatch", versionString())
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return "dev"
}

// newLogger builds the process logger from the configuration.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// wantsHelp reports whether args ask for a command's help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
		if a == "--" {
			return false
		}
	}
	return false
}

// loadConfigOrFail reads the configuration, printing the one clear message on
// failure.
func loadConfigOrFail(stderr io.Writer) (Config, bool) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "leakwatch: configuration:", err)
		return Config{}, false
	}
	return cfg, true
}
