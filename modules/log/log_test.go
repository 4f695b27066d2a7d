package log_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/log"
)

func TestNew(t *testing.T) {
	for _, env := range []string{config.Development, config.Production} {
		l, err := log.New(&config.Config{Env: env, Warnings: []string{"a warning"}})
		require.NoError(t, err)
		require.NotNil(t, l)
		// Production logs JSON from Info up; development logs Debug too.
		require.Equal(t, env == config.Development, l.Core().Enabled(-1))
	}
}
