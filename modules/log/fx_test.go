package log_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/modules/log"
)

// TestFailedStartIsOneLine: an operator reads why the service did not
// start in one line, without stack traces.
func TestFailedStartIsOneLine(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	app := fx.New(
		fx.Supply(zap.New(core)),
		log.FxLogger,
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.StartHook(func(context.Context) error { return errors.New("the schema is missing: run app migrate") }))
		}),
	)
	require.Error(t, app.Start(context.Background()))
	var errorsLogged []observer.LoggedEntry
	for _, e := range logs.All() {
		if e.Level >= zap.WarnLevel {
			errorsLogged = append(errorsLogged, e)
		}
	}
	require.Len(t, errorsLogged, 1)
	require.Equal(t, "cannot start", errorsLogged[0].Message)
	require.Contains(t, errorsLogged[0].ContextMap()["error"], "run app migrate")
	require.Empty(t, errorsLogged[0].Stack)
}
