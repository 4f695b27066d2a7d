package example_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsTheComposeExample keeps the README's "Compose your own
// app" code identical to the example that go test compiles and runs.
func TestReadmeShowsTheComposeExample(t *testing.T) {
	src, err := os.ReadFile("compose_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "// README:begin\n")
	if !ok {
		t.Fatal("README:begin marker missing")
	}
	snippet, _, ok := strings.Cut(rest, "// README:end\n")
	if !ok {
		t.Fatal("README:end marker missing")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(snippet)) {
		t.Fatalf("README.md must contain the code between the README markers of compose_example_test.go, verbatim")
	}
}
