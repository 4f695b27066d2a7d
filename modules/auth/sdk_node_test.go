package auth_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// TestMiniProgramClient runs the mini-program client's own tests
// (modules/auth/sdk/test, node's test runner, no npm packages) so that
// `go test ./...` stays the one command that runs every test. They drive the
// client against the real service, built here once, and its emulator.
// Without node it is a skip on a developer machine and a failure under CI.
func TestMiniProgramClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testutil.Unavailable(t, "node (18 or newer, for the mini-program client's tests)", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		testutil.Unavailable(t, "node", err)
	}
	if m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(out); m == nil || atoi(string(m[1])) < 18 {
		testutil.Unavailable(t, "node 18 or newer", &versionError{strings.TrimSpace(string(out))})
	}
	files, err := filepath.Glob(filepath.Join("sdk", "test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no node tests in sdk/test (%v)", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "wxlogin")
	build := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "./app")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./app: %v\n%s", err, out)
	}

	args := append([]string{"--test", "--test-reporter=tap"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "WXLOGIN_SERVER_BIN="+bin)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	err = cmd.Run()
	report := output.String()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, report)
	}
	// A skipped node test is not a pass: name each one in the log.
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, "# SKIP") {
			t.Logf("skipped node test: %s", strings.TrimSpace(line))
		}
	}
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, "# tests ") || strings.HasPrefix(line, "# pass ") || strings.HasPrefix(line, "# skipped ") {
			t.Log(strings.TrimPrefix(line, "# "))
		}
	}
}

type versionError struct{ version string }

func (e *versionError) Error() string { return "found " + e.version }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// goTool is the go command that runs this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
