package webhook

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LoadOrCreateKeys returns Leakwatch's signing keys: configured, if any (the
// first signs); otherwise those stored in the database, creating one on first
// use so every replica signs with the same key and receivers can pin the
// published public keys across restarts.
func LoadOrCreateKeys(ctx context.Context, pool *pgxpool.Pool, configured []SigningKey) ([]SigningKey, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	var out []SigningKey
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Replicas starting together must not each create a key.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.webhook.keys', 0))`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT private_key FROM webhook_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id`)
		if err != nil {
			return err
		}
		encoded, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, e := range encoded {
			k, err := ParseSigningKey(e)
			if err != nil {
				return fmt.Errorf("stored signing key: %w", err)
			}
			out = append(out, k)
		}
		if len(out) > 0 {
			return nil
		}
		k, err := GenerateSigningKey()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_signing_keys (id, private_key) VALUES ($1, $2)`, k.ID(), k.String()); err != nil {
			return err
		}
		out = []SigningKey{k}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load webhook signing keys: %w", err)
	}
	return out, nil
}

// PublicKey is a published verification key.
type PublicKey struct {
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"` // "ed25519"
	Key       string `json:"key"`       // "whpk_…"
	Current   bool   `json:"current"`   // signs new messages
}

// PublicKeys lists the public halves for /.well-known/leakwatch/webhook-keys.
func PublicKeys(keys []SigningKey) []PublicKey {
	out := make([]PublicKey, 0, len(keys))
	for i, k := range keys {
		out = append(out, PublicKey{ID: k.ID(), Algorithm: "ed25519", Key: k.PublicString(), Current: i == 0})
	}
	return out
}
