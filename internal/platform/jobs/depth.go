package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/riverdriver"
)

// DepthCollector publishes how many jobs wait (available) and run in each
// queue. The numbers are the whole database's, so every process reports
// the same: autoscale on max() of them, as an external metric (the Helm
// chart's worker HPA does).
type DepthCollector struct {
	client *Client
	maxAge time.Duration

	available, running *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts []*riverdriver.JobCountByQueueAndStateResult
	err    error
}

// NewDepthCollector counts through River's own query at most once per
// maxAge, however often it is scraped.
func NewDepthCollector(c *Client, maxAge time.Duration) *DepthCollector {
	return &DepthCollector{
		client: c, maxAge: maxAge,
		available: prometheus.NewDesc("leakwatch_river_queue_available_jobs",
			"River jobs ready to run and waiting for a worker, by queue.", []string{"queue"}, nil),
		running: prometheus.NewDesc("leakwatch_river_queue_running_jobs",
			"River jobs being worked, by queue.", []string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (d *DepthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.available
	ch <- d.running
}

// Collect implements prometheus.Collector.
func (d *DepthCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := d.snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.available, err)
		return
	}
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(d.available, prometheus.GaugeValue, float64(c.CountAvailable), c.Queue)
		ch <- prometheus.MustNewConstMetric(d.running, prometheus.GaugeValue, float64(c.CountRunning), c.Queue)
	}
}

func (d *DepthCollector) snapshot() ([]*riverdriver.JobCountByQueueAndStateResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && time.Since(d.at) < d.maxAge {
		return d.counts, d.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.counts, d.err = d.client.Driver().GetExecutor().JobCountByQueueAndState(ctx, &riverdriver.JobCountByQueueAndStateParams{
		QueueNames: []string{QueueCrawl, QueueScan, QueueIncidents, QueueNotify},
	})
	d.at = time.Now()
	return d.counts, d.err
}
