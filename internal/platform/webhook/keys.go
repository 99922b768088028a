package webhook

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leakwatch/leakwatch/internal/platform/secretbox"
)

// LoadOrCreateKeys returns Leakwatch's signing keys: configured, if any (the
// first signs); otherwise those stored in the database, creating one on first
// use so every replica signs with the same key and receivers can pin the
// published public keys across restarts. Stored keys are sealed with box
// where a key is configured (LEAKWATCH_ENCRYPTION_KEY): one stored in
// plaintext before is sealed on this read, so a dump never shows a whsk_.
func LoadOrCreateKeys(ctx context.Context, pool *pgxpool.Pool, box *secretbox.Box, configured []SigningKey) ([]SigningKey, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	var out []SigningKey
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Replicas starting together must not each create a key.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.webhook.keys', 0))`); err != nil {
			return err
		}
		if box.Configured() {
			if _, err := resealKeysTx(ctx, tx, box); err != nil {
				return err
			}
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
			plain, err := box.OpenStored(e)
			if err != nil {
				return fmt.Errorf("open stored signing key: %w", err)
			}
			k, err := ParseSigningKey(plain)
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
		stored, err := box.SealIfConfigured(k.String())
		if err != nil {
			return fmt.Errorf("seal signing key: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_signing_keys (id, private_key) VALUES ($1, $2)`, k.ID(), stored); err != nil {
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

// ResealKeys re-encrypts every stored signing key, retired ones too, under
// box's current key, sealing those stored in plaintext, and returns how
// many changed (`leakwatch secrets reseal`).
func ResealKeys(ctx context.Context, pool *pgxpool.Pool, box *secretbox.Box) (int, error) {
	if !box.Configured() {
		return 0, secretbox.ErrNoKey
	}
	var n int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('leakwatch.webhook.keys', 0))`); err != nil {
			return err
		}
		var err error
		n, err = resealKeysTx(ctx, tx, box)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reseal webhook signing keys: %w", err)
	}
	return n, nil
}

func resealKeysTx(ctx context.Context, tx pgx.Tx, box *secretbox.Box) (int, error) {
	ids, err := secretbox.ResealRows[string](ctx, tx, box,
		`SELECT id, private_key FROM webhook_signing_keys ORDER BY id FOR UPDATE`,
		`UPDATE webhook_signing_keys SET private_key = $2 WHERE id = $1`)
	if err != nil {
		return 0, fmt.Errorf("signing keys: %w", err)
	}
	return len(ids), nil
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
