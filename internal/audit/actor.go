package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// ErrNoActor refuses a change whose caller did not say who makes it: an
// audit entry without an actor is not one, so the change does not happen.
var ErrNoActor = errors.New("audit: a change needs an actor")

// Actor is who makes a change, as every mutating domain method takes it
// (explicitly, like River's and Miniflux's storage methods take their
// arguments): the signature shows which methods change state, and a caller
// cannot forget it without the compiler saying so.
type Actor struct {
	// Name is what the audit log shows: an email, "token:NAME", "cli",
	// "slack:<user>" or "system". Required.
	Name    string
	UserID  int64 // 0: not a user
	TokenID int64 // 0: not an API token
	// OrgID is the organisation the actor works in. Entries of changes that
	// belong to no organisation (a user's password, sessions) are filed
	// there, so the organisation's audit page shows them.
	OrgID     int64
	IP        string
	UserAgent string
	// Details are merged into every entry the actor causes: facts about
	// the channel the change came through (via Slack: the Slack user id).
	Details map[string]any
}

// System is the actor of automatic steps and maintenance.
var System = Actor{Name: "system"}

// CLI is the actor of the leakwatch command line, run by whoever holds the
// database credentials.
var CLI = Actor{Name: "cli", UserAgent: "leakwatch-cli"}

// Entry returns the entry of a change by a: its action on the object, in
// the organisation (0: the actor's), with details (never secrets).
func (a Actor) Entry(orgID int64, action, objectType string, objectID int64, details map[string]any) Entry {
	if orgID == 0 {
		orgID = a.OrgID
	}
	if len(a.Details) > 0 {
		merged := maps.Clone(a.Details)
		maps.Copy(merged, details)
		details = merged
	}
	return Entry{
		OrgID: orgID, ActorUser: a.UserID, ActorToken: a.TokenID, Actor: a.Name,
		Action: action, ObjectType: objectType, ObjectID: strconv.FormatInt(objectID, 10), Details: details,
		IP: a.IP, UserAgent: a.UserAgent,
	}
}

// Record appends e inside tx, the transaction of the change it describes
// (a pool is not accepted), so the entry commits or rolls back with the change. It refuses an entry
// without an actor (ErrNoActor): the caller's transaction then rolls back.
func Record(ctx context.Context, tx pgx.Tx, e Entry) error {
	if e.Actor == "" {
		return fmt.Errorf("%s: %w", e.Action, ErrNoActor)
	}
	return Write(ctx, tx, e)
}
