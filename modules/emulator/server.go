package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/config"
)

// Module runs the emulator in-process when config.WeChat.Emulator is set,
// listening on config.WeChat.EmulatorAddr from OnStart to OnStop, and
// provides the *Emulator (for tests that act as the device in-process).
var Module = fx.Module("emulator",
	fx.Provide(NewInProcess),
	fx.Invoke(func(*Emulator) {}),
)

// Params are NewInProcess's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.WeChat
	Apps      config.Apps
	// HTTP names the service's public URL, where pushes go.
	HTTP   config.HTTP `optional:"true"`
	Logger *zap.Logger
	// Mounts are the other platforms' emulators (the "emulator.mounts" group).
	Mounts []Mount `group:"emulator.mounts"`
}

// NewInProcess builds the emulator for the configured WeChat apps and, when
// Config.Emulator is set, binds EmulatorAddr on start (a failed bind stops
// start-up) and shuts the server down on stop.
func NewInProcess(p Params) *Emulator {
	log := p.Logger.Named("emulator")
	e := New(p.Apps, WithLogger(log), WithPushURL(p.HTTP.PublicURL))
	for _, m := range p.Mounts {
		if err := e.Mount(m); err != nil {
			log.Warn("emulator mount refused", zap.Error(err))
		}
	}
	if !p.Config.Emulator {
		return e
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { return e.Start(p.Config.EmulatorAddr) },
		OnStop:  e.Shutdown,
	})
	return e
}

// Start listens on addr (host:port; port 0 picks a free one) and serves in
// the background until [Emulator.Shutdown]. It returns the bind error, if any.
func (e *Emulator) Start(addr string) error {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.srv != nil {
		return errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           e.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(e.log),
	}
	e.srv, e.addr = srv, ln.Addr().String()
	e.log.Info("WeChat emulator listening (development only: it accepts any device)",
		zap.String("addr", e.addr), zap.Strings("appids", e.order))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("WeChat emulator stopped", zap.Error(err))
		}
	}()
	return nil
}

// Addr returns the address the emulator listens on, "" before Start.
func (e *Emulator) Addr() string {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	return e.addr
}

// URL returns the emulator's base URL (the WeChat client's BaseURL), ""
// before Start.
func (e *Emulator) URL() string {
	if a := e.Addr(); a != "" {
		return "http://" + a
	}
	return ""
}

// Shutdown stops the server started by Start, waiting for calls in flight
// until ctx ends. It does nothing when the emulator was not started.
func (e *Emulator) Shutdown(ctx context.Context) error {
	e.srvMu.Lock()
	srv := e.srv
	e.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	// net/http counts a connection that never carried a request as busy
	// for 5 seconds; clients' spare connections would hold the stop that
	// long. Give calls in flight a short grace, then close what is left.
	grace, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	err := srv.Shutdown(grace)
	if err != nil {
		_ = srv.Close()
		if ctx.Err() == nil {
			err = nil // only the grace ran out
		}
	}
	e.log.Info("WeChat emulator stopped")
	return err
}

// shutdownGrace bounds how long Shutdown waits for calls in flight.
const shutdownGrace = time.Second

// Serve runs an emulator for apps on addr until ctx ends, logging to out
// (each call at debug level). It returns the bind error at once, and nil
// after a clean shutdown.
func Serve(ctx context.Context, apps config.Apps, addr string, out io.Writer, mounts ...Mount) error {
	return ServeWith(ctx, apps, addr, out, nil, mounts...)
}

// ServeWith is Serve with options (such as [WithPushURL]).
func ServeWith(ctx context.Context, apps config.Apps, addr string, out io.Writer, opts []Option, mounts ...Mount) error {
	e := New(apps, append([]Option{WithLogger(ConsoleLogger(out))}, opts...)...)
	for _, m := range mounts {
		if err := e.Mount(m); err != nil {
			return err
		}
	}
	if err := e.Start(addr); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nBe a device:\n  curl -s -X POST %[1]s/emulator/login -d '{\"openid\":\"demo-user\"}'\n"+
		"  (also /emulator/userinfo, /emulator/phone, /emulator/push, /emulator/faults, /emulator/stats; platforms: %[2]s under /emulator/<platform>/)\n\n",
		e.URL(), strings.Join(e.Platforms(), ", "))
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Shutdown(shutdownCtx)
}

// ConsoleLogger is the standalone emulator's logger: every call, readable,
// to out.
func ConsoleLogger(out io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(out), zap.DebugLevel))
}

// TB is the part of testing.TB that [NewTestServer] needs.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// NewTestServer starts an emulator for apps on a free loopback port, stops
// it when the test ends, and returns it with its base URL (set it as
// config.WeChat.BaseURL). Options such as [WithClock] apply.
func NewTestServer(t TB, apps config.Apps, opts ...Option) (*Emulator, string) {
	t.Helper()
	e := New(apps, opts...)
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e, e.URL()
}
