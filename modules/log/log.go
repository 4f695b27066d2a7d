// Package log provides the service's *zap.Logger: human-readable console
// output in development, JSON in production. fx's own events go through
// it (see [FxLogger]) and configuration warnings are printed once it exists.
//
// An application that owns its logging replaces the logger with
// fx.Replace(myLogger) or fx.Decorate(func(l *zap.Logger) *zap.Logger {...}).
// Modules never log secrets (AppSecret, session_key, tokens), whatever logger
// is used.
package log

import (
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/config"
)

// Module provides *zap.Logger and syncs it on stop.
var Module = fx.Module("log",
	fx.Provide(New),
	fx.Invoke(func(lc fx.Lifecycle, l *zap.Logger) {
		lc.Append(fx.StopHook(func() { _ = l.Sync() }))
	}),
)

// FxLogger routes fx's own events through the service logger (warnings
// and errors only, without stack traces); add it to the application's
// options next to [Module]. A failed start is one line, "cannot start",
// naming what failed: fx's intermediate events about it are left out.
var FxLogger = fx.WithLogger(func(l *zap.Logger) fxevent.Logger {
	l = l.Named("fx").WithOptions(zap.AddStacktrace(zapcore.FatalLevel))
	return startOnce{&fxevent.ZapLogger{Logger: l.WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))}, l}
})

// startOnce reports a failed start as one line.
type startOnce struct {
	fxevent.Logger
	l *zap.Logger
}

// LogEvent drops the events that repeat a start failure and reports the
// failure itself once.
func (s startOnce) LogEvent(e fxevent.Event) {
	switch e := e.(type) {
	case *fxevent.OnStartExecuted:
		if e.Err != nil {
			return
		}
	case *fxevent.RollingBack:
		return
	case *fxevent.Started:
		if e.Err != nil {
			s.l.Error("cannot start", zap.String("error", e.Err.Error()))
			return
		}
	}
	s.Logger.LogEvent(e)
}

// New builds the logger for the configured environment and logs the
// configuration's warnings.
func New(cfg *config.Config) (*zap.Logger, error) {
	var zc zap.Config
	if cfg.IsDevelopment() {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "time"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	l, err := zc.Build()
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		l.Warn(w)
	}
	return l, nil
}
