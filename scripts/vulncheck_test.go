// Package scripts holds the tests of the repository's scripts: that the vulnerability gate
// (vulncheck.sh) fails on code that calls a vulnerable function and passes otherwise, and that
// every place that builds or tests the binary names the same Go.
package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vulnDB is the database scripts/test-all.sh built and exported before the tests. In CI a missing
// one fails: a gate whose own test skipped proves nothing.
func vulnDB(t *testing.T) string {
	t.Helper()
	db := os.Getenv("LWA_ROTATOR_VULNDB")
	if db != "" {
		return db
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("LWA_ROTATOR_VULNDB is not set: scripts/test-all.sh builds the vulnerability database and exports it before go test; run the suite through it")
	}
	t.Skip("LWA_ROTATOR_VULNDB is not set: run scripts/test-all.sh, or export LWA_ROTATOR_VULNDB=$(scripts/vulncheck.sh -db) first")
	return ""
}

// TestVulncheckGate runs vulncheck.sh on throwaway modules that use golang.org/x/text/language.
// GO-2021-0113 (Parse reads out of bounds on a malformed tag) affects x/text before v0.3.7.
func TestVulncheckGate(t *testing.T) {
	t.Parallel()
	db := vulnDB(t)
	tests := []struct {
		name    string
		version string // of golang.org/x/text
		body    string // main's body
		fail    bool
		want    string // in the output
	}{
		{"calls the vulnerable function", "v0.3.5", "_, _ = language.Parse(os.Args[1])", true, "GO-2021-0113"},
		// The package is vulnerable but the affected functions are never reached: reported, not fatal.
		{"imports the package without calling it", "v0.3.5", "fmt.Println(language.English, os.Args)", false, "affected by 0 vulnerabilities"},
		{"calls it at the fixed version", "v0.41.0", "_, _ = language.Parse(os.Args[1])", false, "No vulnerabilities found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), "module example.com/gate\n\ngo 1.24\n\nrequire golang.org/x/text "+tc.version+"\n")
			write(t, filepath.Join(dir, "main.go"), "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n\t\"golang.org/x/text/language\"\n)\n\n"+
				"var _ = fmt.Sprint\n\nfunc main() {\n\t"+tc.body+"\n}\n")
			tidy := exec.Command("go", "mod", "tidy")
			tidy.Dir = dir
			if out, err := tidy.CombinedOutput(); err != nil {
				t.Fatalf("go mod tidy in the throwaway module: %v\n%s", err, out)
			}

			gate := exec.Command("bash", "vulncheck.sh", dir)
			// The pinned database alone: the live one is the same code path, and CI may not reach it.
			gate.Env = append(os.Environ(), "LWA_ROTATOR_VULNDB="+db, "LWA_ROTATOR_VULNCHECK_ONLINE=0")
			out, err := gate.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("running vulncheck.sh: %v", err)
			}
			if failed := err != nil; failed != tc.fail {
				t.Errorf("vulncheck.sh failed = %v (%v), want %v", failed, err, tc.fail)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("the output lacks %q", tc.want)
			}
			if t.Failed() {
				t.Logf("vulncheck.sh output:\n%s", out)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
