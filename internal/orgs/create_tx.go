package orgs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/leakwatch/leakwatch/internal/audit"
)

// CreateTx is Create inside the caller's transaction, so that creating an
// organisation can commit or roll back with what goes with it (its first
// owner: auth.Store.CreateOrgWithOwner). A creation is recorded in tx as
// org.create by actor; finding an existing organisation changes nothing
// and records nothing.
func (s *Store) CreateTx(ctx context.Context, tx pgx.Tx, actor audit.Entry, name string) (org Org, created bool, err error) {
	name, err = checkName(name)
	if err != nil {
		return Org{}, false, err
	}
	org, err = scanOrg(tx.QueryRow(ctx, `
		INSERT INTO orgs (name) VALUES ($1)
		ON CONFLICT (name) DO NOTHING
		RETURNING id, name, slack_webhook_url <> '', default_revocation_url, default_max_age_days, created_at`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		org, err = scanOrg(tx.QueryRow(ctx, selectOrg+` WHERE name = $1`, name))
		if err != nil {
			return Org{}, false, fmt.Errorf("read organisation %q: %w", name, err)
		}
		return org, false, nil
	}
	if err != nil {
		return Org{}, false, fmt.Errorf("create organisation %q: %w", name, err)
	}
	e := actor
	e.OrgID, e.Action, e.ObjectType, e.ObjectID, e.Details = org.ID, "org.create", "org", strconv.FormatInt(org.ID, 10), map[string]any{"name": org.Name}
	if err := audit.Write(ctx, tx, e); err != nil {
		return Org{}, false, err
	}
	return org, true, nil
}
