package secretbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ResealRows is the loop every owner of a sealed column runs in a key
// rotation: in tx, it re-seals each secret query selects as (id, stored)
// with b.ResealStored, writes the changed ones back with update ($1 the
// id, $2 the sealed value) and returns the ids it changed. The SQL stays
// with the package that owns the table.
func ResealRows[ID any](ctx context.Context, tx pgx.Tx, b *Box, query, update string) ([]ID, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	type row struct {
		id     ID
		stored string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.stored)
	})
	if err != nil {
		return nil, err
	}
	var changed []ID
	for _, x := range all {
		out, c, err := b.ResealStored(x.stored)
		if err != nil {
			return nil, fmt.Errorf("row %v: %w", x.id, err)
		}
		if !c {
			continue
		}
		if _, err := tx.Exec(ctx, update, x.id, out); err != nil {
			return nil, err
		}
		changed = append(changed, x.id)
	}
	return changed, nil
}
