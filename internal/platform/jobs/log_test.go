package jobs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRoutineToDebug(t *testing.T) {
	t.Parallel()
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		l := routineToDebug(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})))
		l.Info("producer: Producer job counts", "queue", "scan")
		l.With("svc", "x").Info("JobCleaner: Ran successfully", "num_jobs_deleted", 0)
		l.Info("River client started", "client_id", "a")
		l.Warn("producer: Producer job counts") // only info is routine
		out := buf.String()
		if !strings.Contains(out, `level=INFO msg="River client started"`) || !strings.Contains(out, `level=WARN msg="producer: Producer job counts"`) {
			t.Errorf("level %v: a non-routine line changed:\n%s", level, out)
		}
		routine := strings.Count(out, "level=DEBUG")
		if (level == slog.LevelInfo && (routine != 0 || strings.Contains(out, "Ran successfully"))) || (level == slog.LevelDebug && routine != 2) {
			t.Errorf("level %v: routine lines not at debug:\n%s", level, out)
		}
	}
}
