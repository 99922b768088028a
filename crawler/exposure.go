package crawler

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Exposure is how widely a document's text is exposed: whether it is
// publicly readable, and its audience where known.
type Exposure struct {
	Private bool
	Reach   int // stars plus forks of the repository; 0 when unknown
}

// Exposer looks up a document's exposure (crawler/github.RepoExposure asks
// GitHub about the repository). It is asked only about documents with
// findings, which are rare, so it may call an API; it should cache.
type Exposer interface {
	Exposure(ctx context.Context, d *Document) (Exposure, bool, error)
}

// exposureTimeout bounds a lookup: severity is worth a moment, not the
// seconds in which a leaked key gets used.
const exposureTimeout = 3 * time.Second

// WithExposer turns on exposure lookups for documents with findings. It
// returns p.
func (p *Pipeline) WithExposer(e Exposer, logger *slog.Logger, reg prometheus.Registerer) *Pipeline {
	p.exposer, p.exposeLog = e, logger
	p.exposeLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "leakwatch", Subsystem: "crawler", Name: "exposure_lookups_total",
		Help: "Exposure lookups (repository visibility and reach) for documents with findings, by result: ok, unknown or error.",
	}, []string{"result"})
	if reg != nil {
		reg.MustRegister(p.exposeLookups)
	}
	return p
}

// expose fills in d's exposure. A private flag the source already set
// stays set; a failed lookup leaves what the source said (public, reach
// unknown), so a lookup never delays or loses a finding.
func (p *Pipeline) expose(ctx context.Context, d *Document) {
	if p.exposer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, exposureTimeout)
	defer cancel()
	e, ok, err := p.exposer.Exposure(ctx, d)
	switch {
	case err != nil:
		p.exposeLookups.WithLabelValues("error").Inc()
		if p.exposeLog != nil {
			p.exposeLog.Warn("exposure lookup failed; severity assumes public, reach unknown",
				slog.String("source", d.Source), slog.String("repo", d.Repo), slog.Any("error", err))
		}
		return
	case !ok:
		p.exposeLookups.WithLabelValues("unknown").Inc()
		return
	}
	p.exposeLookups.WithLabelValues("ok").Inc()
	d.Private = d.Private || e.Private
	d.Reach = e.Reach
}
