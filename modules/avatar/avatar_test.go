package avatar

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidName(t *testing.T) {
	good := []string{"0123456789abcdef0123456789abcdef.png", "ffffffffffffffffffffffffffffffff.webp", "00000000000000000000000000000000.jpg"}
	bad := []string{"", "../etc/passwd", "0123456789abcdef0123456789abcdef.gif", "0123456789ABCDEF0123456789ABCDEF.png",
		"0123456789abcdef0123456789abcdef.png.png", "0123456789abcdef0123456789abcde/.png", ".png", "x.png"}
	for _, n := range good {
		require.True(t, validName(n), n)
	}
	for _, n := range bad {
		require.False(t, validName(n), n)
	}
}

func TestDirRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDir(filepath.Join(dir, "avatars"))
	require.NoError(t, err)
	ctx := context.Background()
	name, err := randomName("png")
	require.NoError(t, err)
	require.True(t, validName(name))
	data := []byte("\x89PNG\r\n\x1a\nrest")
	require.NoError(t, d.Save(ctx, name, bytes.NewReader(data)))
	rc, err := d.Open(ctx, name)
	require.NoError(t, err)
	got, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, data, got)
	require.NoError(t, d.Delete(ctx, name))
	_, err = d.Open(ctx, name)
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, d.Delete(ctx, name), "deleting twice is fine")

	// Names from outside never reach the file system.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("x"), 0o600))
	_, err = d.Open(ctx, "../secret.txt")
	require.ErrorIs(t, err, ErrNotFound)
	require.Error(t, d.Save(ctx, "../evil.png", bytes.NewReader(data)))
	entries, _ := os.ReadDir(filepath.Join(dir, "avatars"))
	require.Empty(t, entries, "no temporary files left behind")
}
