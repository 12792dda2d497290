package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/durableobjects/durable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus metrics and the runtime's counters.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(rt *durable.Runtime) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "durable_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "durable_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.latency, runtimeCollector{rt},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// runtimeCollector exports durable.Stats at scrape time.
type runtimeCollector struct{ rt *durable.Runtime }

var (
	descActive      = prometheus.NewDesc("durable_objects_active", "Objects in memory.", nil, nil)
	descActivations = prometheus.NewDesc("durable_object_activations_total", "Object constructor runs.", nil, nil)
	descEvictions   = prometheus.NewDesc("durable_object_evictions_total", "Objects evicted from memory.", nil, nil)
	descEvents      = prometheus.NewDesc("durable_events_total", "Events queued to objects.", nil, nil)
	descOverloaded  = prometheus.NewDesc("durable_overloaded_total", "Calls refused because an object's queue was full.", nil, nil)
	descCommits     = prometheus.NewDesc("durable_commits_total", "Batch commits that wrote.", nil, nil)
	descCommitErrs  = prometheus.NewDesc("durable_commit_errors_total", "Batch commits that failed.", nil, nil)
	descSyncRounds  = prometheus.NewDesc("durable_sync_rounds_total", "Durability barrier sync rounds.", nil, nil)
	descSyncErrs    = prometheus.NewDesc("durable_sync_errors_total", "Durability barrier rounds that failed.", nil, nil)
	descSyncLatency = prometheus.NewDesc("durable_commit_sync_seconds", "Duration of the sync rounds that make commits durable.", nil, nil)
	descAlarmRuns   = prometheus.NewDesc("durable_alarm_runs_total", "Alarm handler runs.", nil, nil)
	descAlarmRetry  = prometheus.NewDesc("durable_alarm_retries_total", "Failed alarm runs scheduled again.", nil, nil)
	descAlarmFail   = prometheus.NewDesc("durable_alarm_failures_total", "Alarms abandoned after their last retry.", nil, nil)
)

func (c runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descActivations, descEvictions, descEvents, descOverloaded,
		descCommits, descCommitErrs, descSyncRounds, descSyncErrs, descSyncLatency, descAlarmRuns, descAlarmRetry, descAlarmFail} {
		ch <- d
	}
}

func (c runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rt.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descActive, float64(s.ActiveObjects))
	counter(descActivations, s.Activations)
	counter(descEvictions, s.Evictions)
	counter(descEvents, s.Events)
	counter(descOverloaded, s.Overloaded)
	counter(descCommits, s.Commits)
	counter(descCommitErrs, s.CommitErrors)
	counter(descSyncRounds, s.SyncRounds)
	counter(descSyncErrs, s.SyncErrors)
	counter(descAlarmRuns, s.AlarmRuns)
	counter(descAlarmRetry, s.AlarmRetries)
	counter(descAlarmFail, s.AlarmFailures)
	buckets := map[float64]uint64{}
	var cum uint64
	for i, b := range durable.SyncLatencyBuckets {
		cum += s.SyncLatency[i]
		buckets[b.Seconds()] = cum
	}
	total := cum + s.SyncLatency[len(durable.SyncLatencyBuckets)]
	ch <- prometheus.MustNewConstHistogram(descSyncLatency, total, s.SyncLatencySum.Seconds(), buckets)
}
