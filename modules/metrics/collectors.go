package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/internal/buildinfo"
)

// buildInfo is wxlogin_build_info, always 1, labelled with the build.
func buildInfo() prometheus.Collector {
	version, revision := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "The running build: version, VCS revision and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go_version": runtime.Version()},
	})
	g.Set(1)
	return g
}

// redisCollector exports go-redis's pool statistics (a cluster client's
// are summed over its nodes).
type redisCollector struct {
	client goredis.UniversalClient

	hits, misses, timeouts, waits, waitSeconds, stale, total, idle, pending *prometheus.Desc
}

func newRedisCollector(c goredis.UniversalClient) *redisCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "redis_pool", name), help, nil, nil)
	}
	return &redisCollector{
		client:      c,
		hits:        desc("hits_total", "Times a free connection was found in the Redis pool."),
		misses:      desc("misses_total", "Times no free connection was found in the Redis pool (a new one was dialled)."),
		timeouts:    desc("timeouts_total", "Times waiting for a Redis pool connection timed out."),
		waits:       desc("waits_total", "Times a command waited for a Redis pool connection."),
		waitSeconds: desc("wait_seconds_total", "Time spent waiting for Redis pool connections."),
		stale:       desc("stale_connections_total", "Stale connections removed from the Redis pool."),
		total:       desc("connections", "Connections in the Redis pool."),
		idle:        desc("idle_connections", "Idle connections in the Redis pool."),
		pending:     desc("pending_requests", "Commands waiting for a Redis pool connection now."),
	}
}

// Describe sends the descriptions.
func (r *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{r.hits, r.misses, r.timeouts, r.waits, r.waitSeconds, r.stale, r.total, r.idle, r.pending} {
		ch <- d
	}
}

// Collect reads the pool's statistics.
func (r *redisCollector) Collect(ch chan<- prometheus.Metric) {
	s := r.client.PoolStats()
	if s == nil {
		return
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(r.hits, float64(s.Hits))
	counter(r.misses, float64(s.Misses))
	counter(r.timeouts, float64(s.Timeouts))
	counter(r.waits, float64(s.WaitCount))
	counter(r.waitSeconds, float64(s.WaitDurationNs)/1e9)
	counter(r.stale, float64(s.StaleConns))
	gauge(r.total, float64(s.TotalConns))
	gauge(r.idle, float64(s.IdleConns))
	gauge(r.pending, float64(s.PendingRequests))
}
