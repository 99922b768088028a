package incidents

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakwatch/leakwatch/crawler"
)

type metrics struct {
	toDetect  *prometheus.HistogramVec
	toContain *prometheus.HistogramVec
	toRotate  *prometheus.HistogramVec
}

// RegisterMetrics exposes incident metrics on reg: open incidents by phase
// and severity (read at scrape time) and histograms of the time from the
// leak to its detection, and from identification to containment and to
// rotation.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) {
	buckets := []float64{60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400}
	m := &metrics{
		toDetect: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "leakwatch", Subsystem: "incidents", Name: "time_to_detect_seconds",
			Help: "Time from the leak (the source's event time) to its detection, for opened incidents.", Buckets: buckets,
		}, []string{"source"}),
		toContain: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "leakwatch", Subsystem: "incidents", Name: "time_to_contain_seconds",
			Help: "Time from identification to containment.", Buckets: buckets,
		}, []string{"severity"}),
		toRotate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "leakwatch", Subsystem: "incidents", Name: "time_to_rotate_seconds",
			Help: "Time from identification to rotation (eradication).", Buckets: buckets,
		}, []string{"severity"}),
	}
	reg.MustRegister(m.toDetect, m.toContain, m.toRotate, openCollector{s: s})
	s.metrics = m
}

// observeTransition feeds the histograms. It reads inside the transaction;
// a rolled-back transition may still be counted, which a histogram of
// durations tolerates.
func (s *Service) observeTransition(ctx context.Context, tx pgx.Tx, id int64, to Phase) {
	if s.metrics == nil || (to != PhaseContained && to != PhaseEradicated) {
		return
	}
	var sev string
	var identified time.Time
	var at *time.Time
	col := "contained_at"
	h := s.metrics.toContain
	if to == PhaseEradicated {
		col, h = "eradicated_at", s.metrics.toRotate
	}
	if err := tx.QueryRow(ctx, `SELECT severity, identified_at, `+col+` FROM incidents WHERE id = $1`, id).Scan(&sev, &identified, &at); err != nil || at == nil {
		return
	}
	h.WithLabelValues(sev).Observe(at.Sub(identified).Seconds())
}

var openDesc = prometheus.NewDesc("leakwatch_incidents_open", "Open incidents by phase and severity.", []string{"phase", "severity"}, nil)

type openCollector struct{ s *Service }

func (c openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- openDesc }

func (c openCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.s.pool.Query(ctx, `SELECT phase, severity, count(*) FROM incidents WHERE state = 'open' GROUP BY 1, 2`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var phase, sev string
		var n int64
		if err := rows.Scan(&phase, &sev, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(openDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(n), phase, sev)
	}
}

// observeDetection feeds the time-to-detect histogram for a new incident.
func (s *Service) observeDetection(f crawler.Finding) {
	if s.metrics == nil || f.EventAt.IsZero() || f.DetectedAt.Before(f.EventAt) {
		return
	}
	s.metrics.toDetect.WithLabelValues(f.Source).Observe(f.DetectedAt.Sub(f.EventAt).Seconds())
}
