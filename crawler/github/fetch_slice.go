package github

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// A fetch job runs in slices so that no job outlives River's rescue window:
// a job left running by a dead process is run again only once both its
// timeout and LEAKWATCH_JOB_RESCUE_AFTER have passed, so a job allowed to
// run for ten minutes would hold a crash's recovery for ten minutes. A push
// or tree that needs longer stops starting new commits or files when its
// slice is over, records what it found, and queues a job for the rest.

// sliceShare is the part of a job's timeout spent starting new work; the
// rest is left for the commit or file under way and for recording findings.
const sliceShare = 2.0 / 3

type sliceKey struct{}

// withSlice marks ctx with the time after which a fetch should hand its
// remaining work to a follow-up job.
func withSlice(ctx context.Context, timeout time.Duration) context.Context {
	return context.WithValue(ctx, sliceKey{}, time.Now().Add(time.Duration(float64(timeout)*sliceShare)))
}

// sliceOver reports whether the fetch's slice is used up. Fetches outside a
// job (no slice) run to the end.
func sliceOver(ctx context.Context) bool {
	end, ok := ctx.Value(sliceKey{}).(time.Time)
	return ok && time.Now().After(end)
}

// moreWork is returned by a fetch whose slice ended first: Next is the job
// that finishes it.
type moreWork struct{ Next river.JobArgs }

func (m *moreWork) Error() string { return fmt.Sprintf("%s continues in another job", m.Next.Kind()) }

// continueLater queues the rest of a sliced fetch and reports whether err
// was such a hand-over. The follow-up is unique by its own arguments, so a
// retried slice queues it once.
func continueLater(ctx context.Context, err error) (bool, error) {
	var more *moreWork
	if !errors.As(err, &more) {
		return false, nil
	}
	client, cerr := river.ClientFromContextSafely[pgx.Tx](ctx)
	if cerr != nil {
		return true, fmt.Errorf("queue rest of %s: %w", more.Next.Kind(), cerr)
	}
	if _, cerr := client.Insert(ctx, more.Next, nil); cerr != nil {
		return true, fmt.Errorf("queue rest of %s: %w", more.Next.Kind(), cerr)
	}
	return true, nil
}
