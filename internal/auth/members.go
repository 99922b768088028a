package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MemberByEmail returns the membership in the organisation of the user with
// that email (case-insensitive): how an action taken elsewhere (a Slack
// button, identified by the clicker's email) finds who acts and with what
// role. ErrNotFound: no such user, or not a member.
func (s *Store) MemberByEmail(ctx context.Context, orgID int64, email string) (Membership, error) {
	m, err := scanMembership(s.pool.QueryRow(ctx, selectMembership+` WHERE m.org_id = $1 AND u.email = lower($2)`, orgID, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return Membership{}, fmt.Errorf("member of organisation %d: %w", orgID, ErrNotFound)
	}
	if err != nil {
		return Membership{}, fmt.Errorf("read member of organisation %d: %w", orgID, err)
	}
	return m, nil
}
