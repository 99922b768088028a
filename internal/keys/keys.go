// Package keys owns the registry of protected keys. A key is known only by
// its fingerprint (see package matcher); the plaintext never reaches the
// service. Besides the fingerprint a key carries what a security team needs
// to act on a leak: provider, environment, owner, scopes/notes, tags, a
// rotation policy, the revocation endpoint and a state. Rotating a key
// replaces its fingerprint and keeps every earlier one as history.
package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
	"github.com/leakwatch/leakwatch/internal/platform/webhook"
	"github.com/leakwatch/leakwatch/matcher"
)

// Sentinel errors.
var (
	// ErrDuplicate is returned when the organisation already has a key of
	// that name or fingerprint.
	ErrDuplicate = errors.New("key already registered")
	// ErrNotFound is returned when the organisation has no such key.
	ErrNotFound = errors.New("key not found")
	// ErrInvalid wraps validation failures; the message is safe to show.
	ErrInvalid = errors.New("invalid key")
	// ErrRetired refuses rotating a retired key: reactivate it first.
	ErrRetired = errors.New("the key is retired: reactivate it before rotating it")
)

// Key states.
const (
	StateActive  = "active"
	StateRevoked = "revoked"
	StateRetired = "retired"
)

// Environments a key may live in.
var Environments = []string{"production", "staging", "development"}

// Key is a registered key.
type Key struct {
	ID             int64      `json:"id"`
	OrgID          int64      `json:"org_id"`
	Name           string     `json:"name"`
	Fingerprint    string     `json:"fingerprint"`
	Provider       string     `json:"provider"`
	Environment    string     `json:"environment"`
	Owner          string     `json:"owner"`
	Notes          string     `json:"notes"`
	Tags           []string   `json:"tags"`
	State          string     `json:"state"`
	MaxAgeDays     int        `json:"max_age_days"` // 0: the organisation's default
	RevocationURL  string     `json:"revocation_url"`
	CreatedAt      time.Time  `json:"created_at"`
	RotatedAt      *time.Time `json:"rotated_at"`
	StateChangedAt *time.Time `json:"state_changed_at"`
	UpdatedAt      time.Time  `json:"updated_at"`

	// Derived from the policy and the organisation's defaults.
	PolicyDays             int    `json:"policy_days"` // effective maximum age; 0: no policy
	Stale                  bool   `json:"stale"`
	NeverRotated           bool   `json:"never_rotated"`
	AgeDays                int    `json:"age_days"` // days since the current fingerprint was registered
	EffectiveRevocationURL string `json:"effective_revocation_url"`
}

// Params describe a key to register.
type Params struct {
	Name          string
	Fingerprint   matcher.Fingerprint
	Provider      string // used only when the fingerprint names none
	Environment   string // default production
	Owner         string
	Notes         string
	Tags          []string
	MaxAgeDays    int
	RevocationURL string
}

// Update changes a key's metadata; nil fields are left alone.
type Update struct {
	Name          *string
	Provider      *string
	Environment   *string
	Owner         *string
	Notes         *string
	Tags          *[]string
	MaxAgeDays    *int
	RevocationURL *string
}

// Store reads and writes keys. Every method that changes a key takes the
// audit.Actor who makes the change and records it in the change's own
// transaction: the change and its audit entry commit together.
type Store struct {
	pool     *pgxpool.Pool
	onRotate func(ctx context.Context, tx pgx.Tx, keyID int64) error
	onState  func(ctx context.Context, tx pgx.Tx, keyID int64, state string) error
	guard    *webhook.Guard // checks revocation URLs (WithGuard)
}

// WithGuard makes the store refuse revocation URLs the deployment's
// outgoing-request guard would never reach. It returns s.
func (s *Store) WithGuard(g webhook.Guard) *Store {
	s.guard = &g
	return s
}

// auditTx records a change of a key by a in the change's transaction.
func auditTx(ctx context.Context, tx pgx.Tx, a audit.Actor, orgID int64, action string, keyID int64, details map[string]any) error {
	return audit.Record(ctx, tx, a.Entry(orgID, action, "key", keyID, details))
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// OnRotateTx registers f to run inside every rotation's transaction, so what
// follows a rotation commits with it (incidents moves the key's open
// incident to eradicated). It returns s.
func (s *Store) OnRotateTx(f func(ctx context.Context, tx pgx.Tx, keyID int64) error) *Store {
	s.onRotate = f
	return s
}

// Add registers a key by fingerprint with default metadata.
func (s *Store) Add(ctx context.Context, a audit.Actor, orgID int64, name string, fp matcher.Fingerprint) (Key, error) {
	return s.Register(ctx, a, orgID, Params{Name: name, Fingerprint: fp})
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", invalid("name must have 1 to 200 characters")
	}
	if err := matcher.CheckFreeText("name", name); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return name, nil
}

func checkEnv(env string) (string, error) {
	if env == "" {
		return "production", nil
	}
	if !slices.Contains(Environments, env) {
		return "", invalid("environment must be production, staging or development")
	}
	return env, nil
}

func checkText(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > max {
		return "", invalid("%s is longer than %d bytes", field, max)
	}
	if err := matcher.CheckFreeText(field, v); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return v, nil
}

func checkTags(tags []string) ([]string, error) {
	out := []string{}
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if len(t) > 64 || strings.ContainsAny(t, ", \t\r\n") {
			return nil, invalid("tags must be at most 64 characters without spaces or commas")
		}
		if err := matcher.CheckFreeText("a tag", t); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > 32 {
		return nil, invalid("at most 32 tags")
	}
	return out, nil
}

func checkMaxAge(n int) error {
	if n < 0 || n > 36500 {
		return invalid("max_age_days must be between 0 and 36500")
	}
	return nil
}

// CheckRevocationURL validates a revocation endpoint: empty, or an absolute
// http(s) URL that g (nil: the form only, see webhook.Guard.CheckTarget)
// lets requests reach.
func CheckRevocationURL(g *webhook.Guard, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if len(v) > 2000 {
		return "", invalid("revocation_url must be an absolute http(s) URL")
	}
	if err := g.CheckTarget(v); err != nil {
		return "", fmt.Errorf("%w: revocation_url: %w", ErrInvalid, err)
	}
	return v, nil
}

func provider(fp matcher.Fingerprint, chosen string) (string, error) {
	if p := fp.Provider(); p != "" {
		return p, nil
	}
	chosen = strings.ToLower(strings.TrimSpace(chosen))
	if len(chosen) > 64 {
		return "", invalid("provider is longer than 64 characters")
	}
	return chosen, nil
}

// Register registers a key by fingerprint.
func (s *Store) Register(ctx context.Context, a audit.Actor, orgID int64, p Params) (Key, error) {
	name, err := checkName(p.Name)
	if err != nil {
		return Key{}, err
	}
	env, err := checkEnv(p.Environment)
	if err != nil {
		return Key{}, err
	}
	owner, err := checkText("owner", p.Owner, 200)
	if err != nil {
		return Key{}, err
	}
	notes, err := checkText("notes", p.Notes, 4000)
	if err != nil {
		return Key{}, err
	}
	tags, err := checkTags(p.Tags)
	if err != nil {
		return Key{}, err
	}
	if err := checkMaxAge(p.MaxAgeDays); err != nil {
		return Key{}, err
	}
	rev, err := CheckRevocationURL(s.guard, p.RevocationURL)
	if err != nil {
		return Key{}, err
	}
	prov, err := provider(p.Fingerprint, p.Provider)
	if err != nil {
		return Key{}, err
	}
	if p.Fingerprint.Len() == 0 {
		return Key{}, invalid("fingerprint is required")
	}
	fp := p.Fingerprint.String()
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO keys (org_id, name, fingerprint, provider, environment, owner, notes, tags, max_age_days, revocation_url)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			orgID, name, fp, prov, env, owner, notes, tags, p.MaxAgeDays, rev).Scan(&id)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `INSERT INTO key_fingerprints (key_id, fingerprint, provider) VALUES ($1, $2, $3)`, id, fp, prov); err != nil {
			return err
		}
		return auditTx(ctx, tx, a, orgID, "key.create", id, map[string]any{"name": name, "fingerprint": fp, "environment": env})
	})
	if isUnique(err) {
		return Key{}, fmt.Errorf("key %q: %w", name, ErrDuplicate)
	}
	if err != nil {
		return Key{}, fmt.Errorf("register key %q: %w", name, err)
	}
	return s.Key(ctx, orgID, id)
}

func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// selectKeys reads keys with their derived policy fields.
//
// read-only join: orgs gives the default policy and revocation URL; List
// filters on staleness and Stale orders by age before LIMIT, so the
// defaults must be in the query, not read per row.
const selectKeys = `
	SELECT k.id, k.org_id, k.name, k.fingerprint, k.provider, k.environment, k.owner, k.notes, k.tags, k.state,
		k.max_age_days, k.revocation_url, k.created_at, k.rotated_at, k.state_changed_at, k.updated_at,
		p.days AS policy_days,
		` + staleNow + ` AS stale,
		k.rotated_at IS NULL AS never_rotated,
		floor(extract(epoch FROM now() - coalesce(k.rotated_at, k.created_at)) / 86400)::int AS age_days,
		CASE WHEN k.revocation_url <> '' THEN k.revocation_url ELSE o.default_revocation_url END AS effective_revocation_url
	FROM keys k ` + policyJoin

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	err := row.Scan(&k.ID, &k.OrgID, &k.Name, &k.Fingerprint, &k.Provider, &k.Environment, &k.Owner, &k.Notes, &k.Tags, &k.State,
		&k.MaxAgeDays, &k.RevocationURL, &k.CreatedAt, &k.RotatedAt, &k.StateChangedAt, &k.UpdatedAt,
		&k.PolicyDays, &k.Stale, &k.NeverRotated, &k.AgeDays, &k.EffectiveRevocationURL)
	if k.Tags == nil {
		k.Tags = []string{}
	}
	return k, err
}

// Key returns the organisation's key.
func (s *Store) Key(ctx context.Context, orgID, id int64) (Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, selectKeys+` WHERE k.org_id = $1 AND k.id = $2`, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("read key %d: %w", id, err)
	}
	return k, nil
}

// ListParams filter and page a key listing.
type ListParams struct {
	After int64  // cursor: only keys with a larger id
	Limit int    // default 100, at most 1000
	State string // "" for every state
	Stale bool   // only stale keys
	// Provider and Environment, when set, keep only keys with exactly
	// that provider or environment.
	Provider    string
	Environment string
}

// List returns the organisation's keys in id order.
func (s *Store) List(ctx context.Context, orgID int64, p ListParams) ([]Key, error) {
	if p.Limit <= 0 || p.Limit > 1000 {
		p.Limit = 100
	}
	q := `SELECT * FROM (` + selectKeys + ` WHERE k.org_id = $1 AND k.id > $2 AND ($3 = '' OR k.state = $3)
		AND ($5 = '' OR k.provider = $5) AND ($6 = '' OR k.environment = $6)) x`
	if p.Stale {
		q += ` WHERE x.stale`
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY x.id LIMIT $4`, orgID, p.After, p.State, p.Limit, p.Provider, p.Environment)
	if err != nil {
		return nil, fmt.Errorf("list keys of organisation %d: %w", orgID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
}

// Edit changes a key's metadata.
func (s *Store) Edit(ctx context.Context, a audit.Actor, orgID, id int64, u Update) (Key, error) {
	cur, err := s.Key(ctx, orgID, id)
	if err != nil {
		return Key{}, err
	}
	if u.Name != nil {
		if cur.Name, err = checkName(*u.Name); err != nil {
			return Key{}, err
		}
	}
	if u.Environment != nil {
		if cur.Environment, err = checkEnv(*u.Environment); err != nil {
			return Key{}, err
		}
	}
	if u.Owner != nil {
		if cur.Owner, err = checkText("owner", *u.Owner, 200); err != nil {
			return Key{}, err
		}
	}
	if u.Notes != nil {
		if cur.Notes, err = checkText("notes", *u.Notes, 4000); err != nil {
			return Key{}, err
		}
	}
	if u.Tags != nil {
		if cur.Tags, err = checkTags(*u.Tags); err != nil {
			return Key{}, err
		}
	}
	if u.MaxAgeDays != nil {
		if err := checkMaxAge(*u.MaxAgeDays); err != nil {
			return Key{}, err
		}
		cur.MaxAgeDays = *u.MaxAgeDays
	}
	if u.RevocationURL != nil {
		if cur.RevocationURL, err = CheckRevocationURL(s.guard, *u.RevocationURL); err != nil {
			return Key{}, err
		}
	}
	if u.Provider != nil {
		fp, err := matcher.ParseFingerprint(cur.Fingerprint)
		if err != nil {
			return Key{}, fmt.Errorf("key %d: stored fingerprint: %w", id, err)
		}
		if cur.Provider, err = provider(fp, *u.Provider); err != nil {
			return Key{}, err
		}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE keys SET name = $3, environment = $4, owner = $5, notes = $6, tags = $7, max_age_days = $8,
				revocation_url = $9, provider = $10, updated_at = now()
			WHERE org_id = $1 AND id = $2`,
			orgID, id, cur.Name, cur.Environment, cur.Owner, cur.Notes, cur.Tags, cur.MaxAgeDays, cur.RevocationURL, cur.Provider)
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, a, orgID, "key.update", id, map[string]any{"name": cur.Name})
	})
	if isUnique(err) {
		return Key{}, fmt.Errorf("key %q: %w", cur.Name, ErrDuplicate)
	}
	if err != nil {
		return Key{}, fmt.Errorf("edit key %d: %w", id, err)
	}
	return s.Key(ctx, orgID, id)
}

// OnStateTx registers f to run inside the transaction of every state change
// (incidents marks the key's open incident contained when it is revoked).
// It returns s.
func (s *Store) OnStateTx(f func(ctx context.Context, tx pgx.Tx, keyID int64, state string) error) *Store {
	s.onState = f
	return s
}

// Rotate replaces the key's fingerprint, keeping the old one in its history.
// Rotating a revoked key makes it active again: it is a new secret in
// service. A retired key is refused (ErrRetired): rotating it used to
// reactivate it silently; reactivating is a decision of its own.
func (s *Store) Rotate(ctx context.Context, a audit.Actor, orgID, id int64, fp matcher.Fingerprint) (Key, error) {
	if fp.Len() == 0 {
		return Key{}, invalid("fingerprint is required")
	}
	newFP := fp.String()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old, prov, state string
		err := tx.QueryRow(ctx, `SELECT fingerprint, provider, state FROM keys WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, id).Scan(&old, &prov, &state)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("key %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if state == StateRetired {
			return fmt.Errorf("key %d: %w", id, ErrRetired)
		}
		if old == newFP {
			return invalid("the new fingerprint equals the current one; rotate means a new secret")
		}
		if p := fp.Provider(); p != "" {
			prov = p
		}
		_, err = tx.Exec(ctx, `
			UPDATE keys SET fingerprint = $3, provider = $4, rotated_at = now(), updated_at = now(),
				state_changed_at = CASE WHEN state <> 'active' THEN now() ELSE state_changed_at END, state = 'active'
			WHERE org_id = $1 AND id = $2`, orgID, id, newFP, prov)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE key_fingerprints SET replaced_at = now() WHERE key_id = $1 AND replaced_at IS NULL`, id); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `INSERT INTO key_fingerprints (key_id, fingerprint, provider) VALUES ($1, $2, $3)`, id, newFP, prov); err != nil {
			return err
		}
		if err := auditTx(ctx, tx, a, orgID, "key.rotate", id, map[string]any{"fingerprint": newFP, "previous": old}); err != nil {
			return err
		}
		if s.onRotate != nil {
			return s.onRotate(ctx, tx, id)
		}
		return nil
	})
	if isUnique(err) {
		return Key{}, fmt.Errorf("key %d: %w", id, ErrDuplicate)
	}
	if err != nil {
		return Key{}, fmt.Errorf("rotate key %d: %w", id, err)
	}
	return s.Key(ctx, orgID, id)
}

// SetState moves a key to active, revoked or retired. Only active keys are
// matched.
func (s *Store) SetState(ctx context.Context, a audit.Actor, orgID, id int64, state string) (Key, error) {
	if state != StateActive && state != StateRevoked && state != StateRetired {
		return Key{}, invalid("state must be active, revoked or retired")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE keys SET state = $3, state_changed_at = now(), updated_at = now()
			WHERE org_id = $1 AND id = $2 AND state <> $3`, orgID, id, state)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if err := auditTx(ctx, tx, a, orgID, "key."+state, id, map[string]any{"state": state}); err != nil {
			return err
		}
		if s.onState == nil {
			return nil
		}
		return s.onState(ctx, tx, id, state)
	})
	if err != nil {
		return Key{}, fmt.Errorf("set state of key %d: %w", id, err)
	}
	return s.Key(ctx, orgID, id)
}

// Version is one fingerprint a key has had.
type Version struct {
	Fingerprint string     `json:"fingerprint"`
	Provider    string     `json:"provider"`
	CreatedAt   time.Time  `json:"created_at"`
	ReplacedAt  *time.Time `json:"replaced_at"`
}

// History returns every fingerprint of the key, oldest first.
func (s *Store) History(ctx context.Context, orgID, id int64) ([]Version, error) {
	if _, err := s.Key(ctx, orgID, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT fingerprint, provider, created_at, replaced_at FROM key_fingerprints WHERE key_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of key %d: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) {
		var v Version
		err := r.Scan(&v.Fingerprint, &v.Provider, &v.CreatedAt, &v.ReplacedAt)
		return v, err
	})
}

// Digest is the rotation-hygiene report of an organisation: active keys past
// their policy age, and active keys never rotated.
type Digest struct {
	OrgID        int64 `json:"org_id"`
	Stale        []Key `json:"stale"`
	NeverRotated []Key `json:"never_rotated"`
}

// Digest builds the organisation's rotation digest.
func (s *Store) Digest(ctx context.Context, orgID int64) (Digest, error) {
	rows, err := s.pool.Query(ctx, selectKeys+` WHERE k.org_id = $1 AND k.state = 'active' ORDER BY k.id`, orgID)
	if err != nil {
		return Digest{}, fmt.Errorf("digest of organisation %d: %w", orgID, err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return Digest{}, fmt.Errorf("digest of organisation %d: %w", orgID, err)
	}
	d := Digest{OrgID: orgID, Stale: []Key{}, NeverRotated: []Key{}}
	for _, k := range all {
		if k.Stale {
			d.Stale = append(d.Stale, k)
		}
		if k.NeverRotated {
			d.NeverRotated = append(d.NeverRotated, k)
		}
	}
	return d, nil
}

// activeRef is what the matcher needs of a key.
type activeRef struct {
	Ref
	fingerprint string
	active      bool
	rotated     bool                // a fingerprint the key was rotated away from
	parsed      matcher.Fingerprint // filled by the registry
}

// activeRefs reads the matcher's input: every active key of every
// organisation, only the columns the registry needs, and the fingerprints
// active keys were rotated away from less than rotated ago, with the
// database time the read started.
func (s *Store) activeRefs(ctx context.Context, rotated time.Duration) (keysRead, error) {
	return s.refs(ctx, time.Time{}, rotated)
}

// changedRefs reads every key, active or not, updated after since, and the
// recently replaced fingerprints of those that are active.
func (s *Store) changedRefs(ctx context.Context, since time.Time, rotated time.Duration) (keysRead, error) {
	return s.refs(ctx, since, rotated)
}

// keysRead is one consistent read of keys for the matcher.
type keysRead struct {
	start   time.Time // database time of the read
	version int64     // keyset_version the read reflects
	refs    []activeRef
	// rotated are fingerprints active keys were rotated away from within
	// the retention (never a key's current one), one per key and
	// fingerprint.
	rotated []activeRef
}

// refs reads active keys (since zero) or keys updated after since, with
// their fingerprints replaced less than rotated ago (none when rotated is 0).
func (s *Store) refs(ctx context.Context, since time.Time, rotated time.Duration) (keysRead, error) {
	var r keysRead
	where, args := `WHERE state = 'active'`, []any{}
	if !since.IsZero() {
		where, args = `WHERE updated_at > $1`, []any{since}
	}
	// One repeatable-read transaction: the start time, the key-set version
	// and the keys all come from the same database snapshot.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now(), version FROM keyset_version`).Scan(&r.start, &r.version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, org_id, name, fingerprint, state = 'active' FROM keys `+where, args...)
		if err != nil {
			return err
		}
		r.refs = make([]activeRef, 0, 1024)
		for rows.Next() {
			var a activeRef
			if err := rows.Scan(&a.ID, &a.OrgID, &a.Name, &a.fingerprint, &a.active); err != nil {
				rows.Close()
				return err
			}
			r.refs = append(r.refs, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil || rotated <= 0 {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT DISTINCT k.id, k.org_id, k.name, kf.fingerprint
			FROM key_fingerprints kf JOIN keys k ON k.id = kf.key_id
			WHERE kf.replaced_at IS NOT NULL AND kf.replaced_at > now() - make_interval(secs => $1)
			  AND kf.fingerprint <> k.fingerprint AND k.state = 'active'
			  AND ($2::timestamptz IS NULL OR k.updated_at > $2)`, rotated.Seconds(), nullTime(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a := activeRef{active: true, rotated: true}
			if err := rows.Scan(&a.ID, &a.OrgID, &a.Name, &a.fingerprint); err != nil {
				return err
			}
			r.rotated = append(r.rotated, a)
		}
		return rows.Err()
	})
	if err != nil {
		return keysRead{}, fmt.Errorf("read keys for the matcher: %w", err)
	}
	return r, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Active returns every active key of every organisation: the matcher's input.
func (s *Store) Active(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, org_id, name, fingerprint, provider, state, created_at
		FROM keys WHERE state = 'active' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list active keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.ID, &k.OrgID, &k.Name, &k.Fingerprint, &k.Provider, &k.State, &k.CreatedAt); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list active keys: %w", err)
	}
	return out, nil
}
