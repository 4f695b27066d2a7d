package main

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when the benchmark starts this test binary
// as its service process (WXLOGIN_BENCH_SERVICE, see bench_test.go), that
// service.
func TestMain(m *testing.M) {
	if spec := os.Getenv(benchServiceEnv); spec != "" {
		os.Exit(runBenchService(spec))
	}
	os.Exit(m.Run())
}
