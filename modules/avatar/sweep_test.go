package avatar_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/avatar"
)

// TestSweeper: uploads older than the grace period that their owner does
// not point at go, file and row; the current avatar and uploads in flight
// stay. On every database.
func TestSweeper(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			client := testutil.Database(t, backend)
			dir := t.TempDir()
			storage, err := avatar.NewDir(dir)
			require.NoError(t, err)
			now := time.Now().UTC()
			clock := func() time.Time { return now }
			s := avatar.NewSweeper(client, storage, nil, avatar.WithSweepClock(clock))

			name := func(c byte) string { return string(bytes.Repeat([]byte{c}, 32)) + ".png" }
			current, lost, inflight, orphan := name('a'), name('b'), name('c'), name('d')
			owner := client.User.Create().SetAvatarURL("https://api.example.com/avatars/" + current).SaveX(ctx)
			other := client.User.Create().SaveX(ctx)
			for _, u := range []struct {
				name string
				user *ent.User
				age  time.Duration
			}{
				{current, owner, time.Hour}, {lost, owner, time.Hour}, {inflight, other, time.Minute}, {orphan, other, time.Hour},
			} {
				client.AvatarUpload.Create().SetName(u.name).SetUserID(u.user.ID).SetCreatedAt(now.Add(-u.age)).ExecX(ctx)
				require.NoError(t, storage.Save(ctx, u.name, bytes.NewReader([]byte("\x89PNG\r\n\x1a\nx"))))
			}

			n, err := s.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, n)
			require.ElementsMatch(t, []string{current, inflight}, files(t, dir))
			require.ElementsMatch(t, []string{current, inflight}, client.AvatarUpload.Query().Select("name").StringsX(ctx))

			now = now.Add(avatar.SweepGrace)
			n, err = s.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n, "the upload whose user never pointed at it goes once the grace period is over")
			require.Equal(t, []string{current}, files(t, dir))

			// A merge gives the survivor the absorbed user's uploads.
			tx, err := client.Tx(ctx)
			require.NoError(t, err)
			require.NoError(t, avatar.MoveUploads(ctx, tx, owner.ID, other.ID))
			require.NoError(t, tx.Commit())
			require.Equal(t, other.ID, client.AvatarUpload.Query().OnlyX(ctx).UserID)
		})
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, filepath.Base(e.Name()))
	}
	return out
}
