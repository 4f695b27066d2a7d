// Package periodic runs background loops that start and stop with the
// application: a job every interval (token cleanup, lapsed bans, the avatar
// sweep, a feed's polling) or any loop that runs until it is told to stop
// (a feed's subscription).
package periodic

import (
	"context"
	"sync"
	"time"

	"go.uber.org/fx"
)

// Loop is one background loop, started and stopped once. The zero value is
// ready to use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs loop in a goroutine until Stop cancels its context.
func (l *Loop) Start(loop func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.cancel, l.done = cancel, make(chan struct{})
	done := l.done
	l.mu.Unlock()
	go func() {
		defer close(done)
		loop(ctx)
	}()
}

// Every starts a loop that calls tick once per interval (the first time one
// interval after the start) until Stop.
func (l *Loop) Every(interval time.Duration, tick func(ctx context.Context)) {
	l.Start(func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tick(ctx)
			}
		}
	})
}

// Cancel cancels the loop's context without waiting (Stop waits).
func (l *Loop) Cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
}

// Stop cancels the loop's context and waits for it to return, or for ctx.
// Stopping a loop that is not running does nothing.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnLifecycle calls tick every interval from the application's start to
// its stop.
func OnLifecycle(lc fx.Lifecycle, interval time.Duration, tick func(ctx context.Context)) {
	var l Loop
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { l.Every(interval, tick); return nil },
		OnStop:  l.Stop,
	})
}
