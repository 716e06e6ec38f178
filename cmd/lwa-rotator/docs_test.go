package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocumentedCommandsExist: every `lwa-rotator COMMAND --flag` the README and the docs show
// names a real command and flags it accepts, so a renamed flag cannot leave the guides behind.
func TestDocumentedCommandsExist(t *testing.T) {
	t.Parallel()
	files := []string{"../../README.md"}
	for _, pattern := range []string{"../../docs/*.md", "../../docs/runbooks/*.md", "../../deploy/*/README.md", "../../deploy/helm/lwa-rotator/README.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	// A command line: the binary name, a known command word, then its arguments up to the end of
	// the code span or line.
	line := regexp.MustCompile("lwa-rotator (run|check-config|doctor|status|rotate|seed|healthcheck|version)\\b([^`|#\\n]*)")
	flagRe := regexp.MustCompile(`(?:^|\s)--([a-z][a-z-]*)`)
	usage := map[string]string{}
	seen := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range line.FindAllStringSubmatch(string(raw), -1) {
			cmd, args := m[1], m[2]
			if _, ok := usage[cmd]; !ok {
				var out, errOut bytes.Buffer
				_ = run(context.Background(), []string{cmd, "-h"}, &out, &errOut)
				usage[cmd] = out.String() + errOut.String()
			}
			for _, fm := range flagRe.FindAllStringSubmatch(args, -1) {
				seen++
				if !strings.Contains(usage[cmd], "-"+fm[1]+" ") && !strings.Contains(usage[cmd], "-"+fm[1]+"\n") {
					t.Errorf("%s: `lwa-rotator %s --%s`: the command has no such flag", f, cmd, fm[1])
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d documented flags: the scan is broken", seen)
	}
}
