package lwacreds_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoDaemonPackage keeps the package light for consumers: an application that reads
// its secret must not compile in the rotator, its configuration or its metrics.
func TestImportsNoDaemonPackage(t *testing.T) {
	t.Parallel()
	const module = "github.com/spapi-tools/lwa-rotator/"
	forbidden := []string{"rotator", "notifications", "internal/daemon", "metrics", "config", "cmd"}

	out, err := exec.Command("go", "list", "-deps", "-json", module+"lwacreds").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var pkg struct{ ImportPath string }
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("reading go list output: %v", err)
		}
		seen++
		for _, f := range forbidden {
			if pkg.ImportPath == module+f || strings.HasPrefix(pkg.ImportPath, module+f+"/") {
				t.Errorf("lwacreds depends on %s", pkg.ImportPath)
			}
		}
	}
	if seen < 10 { // the stdlib alone is more: a near-empty list means go list misread the package
		t.Fatalf("go list listed %d packages, want the full dependency set", seen)
	}
}
