package example_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeShowsTheExamples keeps the README's code identical to the
// examples that go test compiles and runs: every snippet between a
// "// README:begin" and a "// README:end" line of an *_example_test.go
// file must appear in README.md verbatim.
func TestReadmeShowsTheExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*_example_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rest, found := string(src), 0
		for {
			_, after, ok := strings.Cut(rest, "// README:begin\n")
			if !ok {
				break
			}
			snippet, tail, ok := strings.Cut(after, "// README:end\n")
			if !ok {
				t.Fatalf("%s: README:begin without README:end", f)
			}
			found++
			if !strings.Contains(string(readme), strings.TrimSpace(snippet)) {
				t.Errorf("README.md must contain, verbatim, the code between README markers #%d of %s", found, f)
			}
			rest = tail
		}
		if found == 0 {
			t.Errorf("%s has no README markers", f)
		}
	}
}
