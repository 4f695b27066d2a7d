package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
)

// Server is the operator listener: GET /metrics and /debug/pprof/ on
// config.Operator.Addr (APP_ADMIN_ADDR), apart from the public API. It binds
// when the application starts (a failed bind stops start-up) and does
// nothing when the address is empty.
type Server struct {
	cfg     config.Operator
	log     *zap.Logger
	handler http.Handler
	srv     *http.Server
	addr    atomic.Value // string, once bound
}

// ServerParams are NewServer's dependencies.
type ServerParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     config.Operator
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Logger     *zap.Logger
}

// NewServer returns the operator listener, tied to the lifecycle.
func NewServer(p ServerParams) *Server {
	s := &Server{cfg: p.Config, log: p.Logger.Named("operator"), handler: Handler(p.Gatherer, p.Registerer)}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s
}

// Handler serves GET /metrics from g (counting its own scrapes in r) and
// the profiler under /debug/pprof/.
func Handler(g prometheus.Gatherer, r prometheus.Registerer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(r, promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: r})))
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs, block, mutex, …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Start binds the listener and serves in the background.
func (s *Server) Start(context.Context) error {
	if s.cfg.Addr == "" {
		s.log.Info("operator listener off (APP_ADMIN_ADDR is empty)")
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("operator: cannot listen on %s (APP_ADMIN_ADDR): %w", s.cfg.Addr, err)
	}
	s.addr.Store(ln.Addr().String())
	// No write timeout: a CPU profile or an execution trace takes as long as
	// the operator asks for (?seconds=).
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.log.Info("operator listener serving /metrics and /debug/pprof/", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("operator listener stopped", zap.Error(err))
		}
	}()
	return nil
}

// Stop closes the listener, letting scrapes in flight finish briefly.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Addr is the bound address (useful with port 0), or "" when off or
// before start.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}
