package jobs

import (
	"context"
	"log/slog"
	"strings"
)

// routineToDebug moves River's periodic reports (the producer's job counts
// every few seconds, each maintenance service's "ran successfully") from
// info to debug: an idle service should say nothing, as Kubernetes
// components keep their per-tick chatter at higher verbosity. River's other
// lines, such as start, stop and hard stop, keep their level.
func routineToDebug(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	return slog.New(routineHandler{l.Handler()})
}

type routineHandler struct{ slog.Handler }

func routine(msg string) bool {
	return strings.Contains(msg, "Producer job counts") || strings.Contains(msg, "Ran successfully")
}

func (h routineHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && routine(r.Message) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h routineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return routineHandler{h.Handler.WithAttrs(attrs)}
}

func (h routineHandler) WithGroup(name string) slog.Handler {
	return routineHandler{h.Handler.WithGroup(name)}
}
