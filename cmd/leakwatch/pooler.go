package main

import "time"

// LEAKWATCH_DATABASE_POOLER values.
const (
	poolerNone        = "none"
	poolerTransaction = "transaction"
)

// Behind a transaction pooler nothing LISTENs: these polls stand in for
// the notifications. Keys keep the one-second propagation promise (a poll
// plus the refresh); the dashboard's live updates may lag a second.
const (
	pooledKeyPoll     = 500 * time.Millisecond
	pooledChangesPoll = time.Second
)

// transactionPooler reports whether DATABASE_URL reaches PostgreSQL through
// a pooler in transaction mode, where no session outlives a transaction.
func (c Config) transactionPooler() bool { return c.DatabasePooler == poolerTransaction }

// pooledPoll returns d behind a transaction pooler, else 0 (LISTEN).
func (c Config) pooledPoll(d time.Duration) time.Duration {
	if c.transactionPooler() {
		return d
	}
	return 0
}
