// Package auth owns the people side of Leakwatch: users, their memberships
// in organisations with a role, password sign-in (argon2id, throttled),
// sessions, one-time sign-in links, invitations and scoped API tokens.
//
// Every bearer value (session cookie, API token, link or invitation token)
// is random, shown once, and stored only as its SHA-256 hash, so a database
// dump grants no access.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/audit"
)

// Role is a member's role in an organisation.
type Role string

// Roles, from least to most privileged. A viewer reads; a responder also
// acts on incidents; an admin also manages keys, integrations and members;
// an owner also manages organisation-level settings and may delete it.
const (
	RoleViewer    Role = "viewer"
	RoleResponder Role = "responder"
	RoleAdmin     Role = "admin"
	RoleOwner     Role = "owner"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleResponder: 2, RoleAdmin: 3, RoleOwner: 4}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if roleRank[r] == 0 {
		return "", fmt.Errorf("%w: role must be owner, admin, responder or viewer", ErrInvalid)
	}
	return r, nil
}

// AtLeast reports whether r includes every right of min.
func (r Role) AtLeast(min Role) bool { return roleRank[r] > 0 && roleRank[r] >= roleRank[min] }

// Sentinel errors.
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalid            = errors.New("invalid input")
	ErrConflict           = errors.New("already exists")
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrThrottled          = errors.New("too many failed sign-in attempts; try again later")
	ErrBusy               = errors.New("too many sign-ins at once; try again in a moment")
	ErrExpired            = errors.New("expired or already used")
	ErrLastOwner          = errors.New("an organisation must keep at least one owner")
	ErrSignInFirst        = errors.New("an account with this email address exists: sign in first, then open the invitation link again")
)

// Config tunes the Store; zero fields take the defaults.
type Config struct {
	SessionTTL    time.Duration // default 12h
	LinkTTL       time.Duration // one-time sign-in links; default 24h
	InvitationTTL time.Duration // default 7 days
	Argon         ArgonParams   // default ArgonDefault
	// Failures allowed per (account, IP) pair and per IP within
	// ThrottleWindow; see SignIn for why not per account across IPs.
	MaxFailuresPerAccount int // default 5
	MaxFailuresPerIP      int // default 20
	ThrottleWindow        time.Duration
	// MaxConcurrentChecks bounds the argon2id password checks running at
	// once (each takes Argon.Memory); CheckWait is how long an attempt
	// waits for a slot before ErrBusy.
	MaxConcurrentChecks int           // default 4
	CheckWait           time.Duration // default 500ms
}

func (c Config) withDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.LinkTTL == 0 {
		c.LinkTTL = 24 * time.Hour
	}
	if c.InvitationTTL == 0 {
		c.InvitationTTL = 7 * 24 * time.Hour
	}
	if c.Argon == (ArgonParams{}) {
		c.Argon = ArgonDefault
	}
	if c.MaxFailuresPerAccount == 0 {
		c.MaxFailuresPerAccount = 5
	}
	if c.MaxFailuresPerIP == 0 {
		c.MaxFailuresPerIP = 20
	}
	if c.ThrottleWindow == 0 {
		c.ThrottleWindow = 15 * time.Minute
	}
	if c.MaxConcurrentChecks <= 0 {
		c.MaxConcurrentChecks = 4
	}
	if c.CheckWait <= 0 {
		c.CheckWait = 500 * time.Millisecond
	}
	return c
}

// Page selects one page of a listing: Limit items after Cursor (an id
// from the previous page). The zero Page selects everything.
type Page struct {
	Cursor int64
	Limit  int
}

func (p Page) limit() int64 {
	if p.Limit <= 0 {
		return 1 << 62
	}
	return int64(p.Limit)
}

// Store reads and writes users, memberships, sessions, links, invitations
// and tokens.
type Store struct {
	pool  *pgxpool.Pool
	cfg   Config
	dummy string // a password hash verified for unknown users, to even out timing
	// checks holds one token per running password check (Config.MaxConcurrentChecks).
	checks chan struct{}
	actor  *audit.Entry // set by As: who makes the changes
}

// As returns a copy of s that records the changes it makes to tokens,
// invitations and memberships in the audit log, inside each change's own
// transaction, as made by e (its actor, IP and user agent; the action,
// object and organisation are filled in here).
func (s *Store) As(e audit.Entry) *Store {
	c := *s
	c.actor = &e
	return &c
}

// auditTx writes the audit entry of a change; without As it does nothing.
func (s *Store) auditTx(ctx context.Context, tx pgx.Tx, orgID int64, action, objectType string, objectID int64, details map[string]any) error {
	if s.actor == nil {
		return nil
	}
	e := *s.actor
	e.OrgID, e.Action, e.ObjectType, e.ObjectID, e.Details = orgID, action, objectType, strconv.FormatInt(objectID, 10), details
	return audit.Write(ctx, tx, e)
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	cfg = cfg.withDefaults()
	dummy, _ := HashPassword("not-a-real-password-0123456789", cfg.Argon)
	return &Store{pool: pool, cfg: cfg, dummy: dummy, checks: make(chan struct{}, cfg.MaxConcurrentChecks)}
}

// NormaliseEmail validates an address and lower-cases it.
func NormaliseEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 320 {
		return "", fmt.Errorf("%w: %q is not an email address", ErrInvalid, s)
	}
	return s, nil
}

// newToken returns a random bearer value with the given prefix and its hash.
func newToken(prefix string) (string, []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	t := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return t, hashToken(t)
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}
