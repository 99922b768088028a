package keys

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/matcher"
)

// notifyChannel is raised by a trigger on every change to keys.
const notifyChannel = "leakwatch_keys"

// Ref names a registered key found by a scan.
type Ref struct {
	ID    int64
	OrgID int64
	Name  string
}

// Snapshot is an immutable view of the active keys: the matcher set and the
// keys behind each fingerprint (several organisations may register the same
// secret).
type Snapshot struct {
	Set    *matcher.Set
	byFP   map[string][]Ref
	Loaded time.Time
}

// Keys returns the keys registered under a finding's fingerprint.
func (s *Snapshot) Keys(fingerprint string) []Ref { return s.byFP[fingerprint] }

// Registry keeps the current Snapshot and replaces it when keys change, so
// scans in flight finish on the set they started with.
type Registry struct {
	store  *Store
	pool   *pgxpool.Pool
	logger *slog.Logger
	cur    atomic.Pointer[Snapshot]

	mu     sync.Mutex                     // serialises Load
	parsed map[string]matcher.Fingerprint // fingerprints parsed by the last Load
}

// NewRegistry returns a Registry holding an empty snapshot until Load.
func NewRegistry(pool *pgxpool.Pool, logger *slog.Logger) *Registry {
	r := &Registry{store: NewStore(pool), pool: pool, logger: logger}
	r.cur.Store(&Snapshot{Set: matcher.NewSet(nil), byFP: map[string][]Ref{}})
	return r
}

// Current returns the snapshot to scan with.
func (r *Registry) Current() *Snapshot { return r.cur.Load() }

// Load reads the active keys and swaps in a new snapshot. It runs on every
// change notification, so it must stay well under the one-second
// propagation budget at hundreds of thousands of keys: it reads only the
// columns it needs and parses only fingerprints the last load did not.
func (r *Registry) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, err := r.store.activeRefs(ctx)
	if err != nil {
		return err
	}
	parsed := make(map[string]matcher.Fingerprint, len(ks))
	byFP := make(map[string][]Ref, len(ks))
	fps := make([]matcher.Fingerprint, 0, len(ks))
	for _, k := range ks {
		fp, ok := r.parsed[k.fingerprint]
		if !ok {
			fp, err = matcher.ParseFingerprint(k.fingerprint)
			if err != nil {
				// One bad row must not blind the matcher to every other key.
				r.logger.Error("skipping key with unparseable fingerprint", slog.Int64("key_id", k.ID), slog.Any("error", err))
				continue
			}
		}
		// Stored fingerprints are canonical (Fingerprint.String), so the
		// stored text is the finding's Fingerprint text.
		refs, seen := byFP[k.fingerprint]
		if !seen {
			fps = append(fps, fp)
			parsed[k.fingerprint] = fp
		}
		byFP[k.fingerprint] = append(refs, k.Ref)
	}
	r.parsed = parsed
	r.cur.Store(&Snapshot{Set: matcher.NewSet(fps), byFP: byFP, Loaded: time.Now()})
	return nil
}

// Run keeps the snapshot current until ctx ends: it reloads on every change
// notification and, as a safety net, every fullReload.
func (r *Registry) Run(ctx context.Context, fullReload time.Duration) {
	changed := make(chan struct{}, 1)
	go r.listen(ctx, changed)
	t := time.NewTicker(fullReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
		if err := r.Load(ctx); err != nil && ctx.Err() == nil {
			r.logger.Error("reload keys", slog.Any("error", err))
		}
	}
}

func (r *Registry) listen(ctx context.Context, changed chan<- struct{}) {
	for ctx.Err() == nil {
		if err := r.listenOnce(ctx, changed); err != nil && ctx.Err() == nil {
			r.logger.Warn("key change listener lost its connection; retrying", slog.Any("error", err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (r *Registry) listenOnce(ctx context.Context, changed chan<- struct{}) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire listener connection: %w", err)
	}
	// The connection carries LISTEN state: never hand it back to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Changes made while we were not listening are picked up now.
	select {
	case changed <- struct{}{}:
	default:
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
}
