package keys

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	Set  *matcher.Set
	byFP map[string][]Ref
	// Version is the key-set version (keyset_version) the snapshot reflects;
	// 0 for the empty snapshot before the first load. A scan made with it
	// may be reused only while the database's version is the same.
	Version int64
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

	// rotatedFor is how long a fingerprint a key was rotated away from
	// stays matchable (0: not at all).
	rotatedFor time.Duration
	// pollEvery, when set, replaces LISTEN with polling keyset_version.
	pollEvery time.Duration

	mu      sync.Mutex // serialises loads and guards what follows
	slow    [2]int     // Slow fingerprints of active keys and kept after rotation, as last logged
	keys    map[int64]activeRef
	rotated map[int64][]activeRef          // key id → fingerprints it was rotated away from
	fps     map[string]matcher.Fingerprint // the parsed fingerprints of cur
	since   time.Time                      // database time at the start of the last load
}

// RotatedRetentionDefault is how long a secret a key was rotated away from
// is still matched: its sightings are recorded, without an alert.
const RotatedRetentionDefault = 90 * 24 * time.Hour

// changeOverlap is how far back before the last load a refresh looks for
// changed keys, so a transaction that began before the last load and
// committed after it is still seen. Longer ones wait for the full reload.
const changeOverlap = 10 * time.Second

// NewRegistry returns a Registry holding an empty snapshot until Load.
func NewRegistry(pool *pgxpool.Pool, logger *slog.Logger) *Registry {
	r := &Registry{store: NewStore(pool), pool: pool, logger: logger}
	r.cur.Store(&Snapshot{Set: matcher.NewSet(nil), byFP: map[string][]Ref{}})
	return r
}

// WithRotatedRetention keeps the fingerprints active keys were rotated away
// from matchable for d after the rotation (0, the default, drops them at
// once). A sighting of such a secret then reaches incidents, which records
// it on the key's last incident as seen after rotation, with no alert.
// Call it before Load. It returns r.
func (r *Registry) WithRotatedRetention(d time.Duration) *Registry {
	r.rotatedFor = max(d, 0)
	return r
}

// WithPolling makes Run notice key changes by reading the key-set version
// (keyset_version, bumped by the same trigger that notifies) every d
// instead of LISTENing: behind a transaction pooler such as PgBouncer a
// LISTEN session is not kept, so notifications never arrive. d at most 1 s
// keeps the one-second propagation promise. Call it before Run. It returns r.
func (r *Registry) WithPolling(d time.Duration) *Registry {
	r.pollEvery = max(d, 0)
	return r
}

// Current returns the snapshot to scan with.
func (r *Registry) Current() *Snapshot { return r.cur.Load() }

// Load reads every active key, and the fingerprints they were rotated away
// from within the retention, and swaps in a new snapshot: the start-up load
// and the periodic safety net (which also drops fingerprints whose
// retention has passed).
func (r *Registry) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	read, err := r.store.activeRefs(ctx, r.rotatedFor)
	if err != nil {
		return err
	}
	keys := make(map[int64]activeRef, len(read.refs))
	byFP := make(map[string][]Ref, len(read.refs))
	fps := make(map[string]matcher.Fingerprint, len(read.refs))
	for _, k := range read.refs {
		if !r.parse(&k, fps) {
			continue
		}
		keys[k.ID] = k
		byFP[k.fingerprint] = append(byFP[k.fingerprint], k.Ref)
	}
	rotated := map[int64][]activeRef{}
	addRotated(keys, rotated, byFP, read.rotated, r.parse, fps)
	r.swap(keys, rotated, byFP, fps, read)
	return nil
}

// addRotated adds the rotated-away fingerprints of keys still active.
func addRotated(keys map[int64]activeRef, rotated map[int64][]activeRef, byFP map[string][]Ref, list []activeRef,
	parse func(*activeRef, map[string]matcher.Fingerprint) bool, fps map[string]matcher.Fingerprint) {
	for _, k := range list {
		if _, ok := keys[k.ID]; !ok || !parse(&k, fps) {
			continue
		}
		rotated[k.ID] = append(rotated[k.ID], k)
		byFP[k.fingerprint] = append(slices.Clip(byFP[k.fingerprint]), k.Ref)
	}
}

// removeRef drops key id from the refs of fingerprint fp (and the
// fingerprint itself when no key is left under it). byFP's slices are
// shared with the published snapshot, so they are copied before changing.
func removeRef(byFP map[string][]Ref, fps map[string]matcher.Fingerprint, fp string, id int64) {
	refs := slices.DeleteFunc(slices.Clone(byFP[fp]), func(x Ref) bool { return x.ID == id })
	if len(refs) == 0 {
		delete(byFP, fp)
		delete(fps, fp)
	} else {
		byFP[fp] = refs
	}
}

// parse fills k.parsed, from fps when another key has the same
// fingerprint, and records it in fps. A bad row is logged and skipped: it
// must not blind the matcher to every other key.
func (r *Registry) parse(k *activeRef, fps map[string]matcher.Fingerprint) bool {
	if fp, ok := fps[k.fingerprint]; ok {
		k.parsed = fp
		return true
	}
	fp, err := matcher.ParseFingerprint(k.fingerprint)
	if err != nil {
		r.logger.Error("skipping key with unparseable fingerprint", slog.Int64("key_id", k.ID), slog.Any("error", err))
		return false
	}
	k.parsed = fp
	fps[k.fingerprint] = fp
	return true
}

// refresh applies the keys changed since the last load (registered,
// rotated, edited, retired, revoked) to copies of the current maps and
// swaps in a new snapshot. It runs on every change notification and reads
// only the changed rows. Deleted keys (their organisation deleted) wait for
// the next full Load.
func (r *Registry) refresh(ctx context.Context) error {
	r.mu.Lock()
	loaded := r.keys != nil
	r.mu.Unlock()
	if !loaded {
		return r.Load(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	read, err := r.store.changedRefs(ctx, r.since.Add(-changeOverlap), r.rotatedFor)
	if err != nil {
		return err
	}
	changed := read.refs
	if len(changed) == 0 {
		r.since = read.start
		// Only deletions (an organisation deleted) leave no updated row; the
		// set still holds their keys until the full reload, which costs
		// nothing but matches, so the snapshot may take the new version.
		if cur := r.cur.Load(); cur.Version != read.version {
			r.cur.Store(&Snapshot{Set: cur.Set, byFP: cur.byFP, Version: read.version})
		}
		return nil
	}
	// The snapshot's maps are read concurrently: patch clones. Ref slices
	// are shared with the old snapshot, so they are copied before changing.
	keys := maps.Clone(r.keys)
	rotated := maps.Clone(r.rotated)
	byFP := maps.Clone(r.cur.Load().byFP)
	fps := maps.Clone(r.fps)
	for _, k := range changed {
		if old, ok := keys[k.ID]; ok {
			removeRef(byFP, fps, old.fingerprint, k.ID)
			delete(keys, k.ID)
		}
		for _, old := range rotated[k.ID] {
			removeRef(byFP, fps, old.fingerprint, k.ID)
		}
		delete(rotated, k.ID)
		if !k.active || !r.parse(&k, fps) {
			continue
		}
		keys[k.ID] = k
		byFP[k.fingerprint] = append(slices.Clip(byFP[k.fingerprint]), k.Ref)
	}
	addRotated(keys, rotated, byFP, read.rotated, r.parse, fps)
	r.swap(keys, rotated, byFP, fps, read)
	return nil
}

// swap publishes a snapshot of byFP; r.mu is held.
func (r *Registry) swap(keys map[int64]activeRef, rotated map[int64][]activeRef, byFP map[string][]Ref, fps map[string]matcher.Fingerprint, read keysRead) {
	list := make([]matcher.Fingerprint, 0, len(fps))
	for _, fp := range fps {
		list = append(list, fp)
	}
	r.keys, r.rotated, r.fps, r.since = keys, rotated, fps, read.start
	r.cur.Store(&Snapshot{Set: matcher.NewSet(list), byFP: byFP, Version: read.version})
	r.noteSlow(keys, rotated)
}

// noteSlow warns, when their numbers change, of fingerprints in the format
// made before kind "w": one of them slows every scan, for every
// organisation, until its key is rotated and the old fingerprint's
// retention ends.
func (r *Registry) noteSlow(keys map[int64]activeRef, rotated map[int64][]activeRef) {
	var ids []int64
	for id, k := range keys {
		if k.parsed.Slow() {
			ids = append(ids, id)
		}
	}
	kept := 0
	for _, list := range rotated {
		for _, k := range list {
			if k.parsed.Slow() {
				kept++
			}
		}
	}
	if [2]int{len(ids), kept} == r.slow {
		return
	}
	r.slow = [2]int{len(ids), kept}
	if len(ids)+kept > 0 {
		slices.Sort(ids)
		r.logger.Warn("fingerprints in the format before kind w slow every scan: rotate these keys (leakwatch fingerprint, or the keys page) to re-register them",
			slog.Int("count", len(ids)), slog.Any("key_ids", ids[:min(len(ids), 20)]), slog.Int("kept_after_rotation", kept))
	}
}

// Run keeps the snapshot current until ctx ends: it reloads on every change
// notification and, as a safety net, every fullReload.
func (r *Registry) Run(ctx context.Context, fullReload time.Duration) {
	changed := make(chan struct{}, 1)
	if r.pollEvery > 0 {
		go r.poll(ctx, changed)
	} else {
		go r.listen(ctx, changed)
	}
	t := time.NewTicker(fullReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
				r.logger.Error("refresh keys", slog.Any("error", err))
			}
		case <-t.C:
			if err := r.Load(ctx); err != nil && ctx.Err() == nil {
				r.logger.Error("reload keys", slog.Any("error", err))
			}
		}
	}
}

// poll signals changed whenever the key-set version differs from the one
// last seen; the first read signals too, like a fresh LISTEN does.
func (r *Registry) poll(ctx context.Context, changed chan<- struct{}) {
	var seen int64 = -1
	t := time.NewTicker(r.pollEvery)
	defer t.Stop()
	for {
		var v int64
		err := r.pool.QueryRow(ctx, `SELECT version FROM keyset_version`).Scan(&v)
		switch {
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("poll key-set version", slog.Any("error", err))
		case err == nil && v != seen:
			seen = v
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
