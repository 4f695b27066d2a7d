package periodic_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/internal/periodic"
)

func TestEveryTicksUntilStopped(t *testing.T) {
	var l periodic.Loop
	var n atomic.Int32
	l.Every(5*time.Millisecond, func(context.Context) { n.Add(1) })
	require.Eventually(t, func() bool { return n.Load() >= 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, l.Stop(context.Background()))
	after := n.Load()
	time.Sleep(30 * time.Millisecond)
	require.Equal(t, after, n.Load(), "no tick after Stop returned")
	require.NoError(t, l.Stop(context.Background()), "stopping twice is harmless")
}

func TestStopWaitsForTheLoopOrTheDeadline(t *testing.T) {
	var l periodic.Loop
	release := make(chan struct{})
	l.Start(func(ctx context.Context) { <-ctx.Done(); <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, l.Stop(ctx), context.DeadlineExceeded, "a loop that does not return holds Stop until the deadline")
	close(release)
}

func TestOnLifecycle(t *testing.T) {
	lc := fxtest.NewLifecycle(t)
	var n atomic.Int32
	var stopped atomic.Bool
	periodic.OnLifecycle(lc, 5*time.Millisecond, func(ctx context.Context) {
		if stopped.Load() {
			t.Error("a tick after the application stopped")
		}
		n.Add(1)
	})
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, n.Load(), "nothing before the start")
	lc.RequireStart()
	require.Eventually(t, func() bool { return n.Load() >= 2 }, 5*time.Second, time.Millisecond)
	lc.RequireStop()
	stopped.Store(true)
	time.Sleep(20 * time.Millisecond)
}
