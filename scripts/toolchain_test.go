package scripts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const repoRoot = ".."

// TestOneGoVersion holds every place that builds or tests the binary to go.mod's Go version: the
// Dockerfile's build stage, setup-go in the workflows, the GOTOOLCHAIN each script and .ci/run
// export, and the README's command. Any other version anywhere among them fails, so a bump
// cannot leave one behind (the vulnerability gate judges the toolchain the scripts select).
func TestOneGoVersion(t *testing.T) {
	t.Parallel()
	goMod := read(t, "go.mod")
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	want := m[1]
	if !regexp.MustCompile(`^1\.\d+\.\d+$`).MatchString(want) {
		t.Fatalf("go.mod says go %s; want a full release version (1.N.P): the toolchain it selects must be exact", want)
	}
	if tc := regexp.MustCompile(`(?m)^toolchain (\S+)$`).FindStringSubmatch(goMod); tc != nil && tc[1] != "go"+want {
		t.Errorf("go.mod: toolchain %s differs from go %s", tc[1], want)
	}

	// place is one file and the pattern that finds each Go version it names; each must name one.
	type place struct {
		file string
		re   *regexp.Regexp
	}
	const version = `(\d+(?:\.\d+)*(?:rc\d+)?)`
	toolchain := regexp.MustCompile(`GOTOOLCHAIN=go` + version)
	places := []place{
		{"Dockerfile", regexp.MustCompile(`golang:` + version)},
		{"README.md", regexp.MustCompile(`(?:GOTOOLCHAIN=go|Go )` + version)},
		{".ci/run", toolchain},
	}
	scripts, err := filepath.Glob(filepath.Join(repoRoot, "scripts", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts/*.sh found (%v)", err)
	}
	for _, s := range scripts {
		places = append(places, place{rel(t, s), toolchain})
	}
	for _, p := range places {
		found := p.re.FindAllStringSubmatch(read(t, p.file), -1)
		if len(found) == 0 {
			t.Errorf("%s names no Go version (%s): it would build or test with whatever Go is installed", p.file, p.re)
		}
		for _, f := range found {
			if f[1] != want {
				t.Errorf("%s: %s; go.mod says %s", p.file, f[0], want)
			}
		}
	}
	// Every script runs go under the version it exports, so the export must come first.
	for _, f := range append(scripts, filepath.Join(repoRoot, ".ci/run")) {
		if !regexp.MustCompile(`(?m)^export GOTOOLCHAIN=go` + regexp.QuoteMeta(want) + `$`).MatchString(read(t, rel(t, f))) {
			t.Errorf("%s does not export GOTOOLCHAIN=go%s on a line of its own", rel(t, f), want)
		}
	}

	workflows, err := filepath.Glob(filepath.Join(repoRoot, ".github/workflows/*.yml"))
	if err != nil || len(workflows) == 0 {
		t.Fatalf("no workflows found (%v)", err)
	}
	for _, w := range workflows {
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Uses string            `yaml:"uses"`
					With map[string]string `yaml:"with"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal([]byte(read(t, rel(t, w))), &wf); err != nil {
			t.Fatalf("%s: %v", rel(t, w), err)
		}
		setups := 0
		for name, job := range wf.Jobs {
			for _, s := range job.Steps {
				if !strings.HasPrefix(s.Uses, "actions/setup-go@") {
					continue
				}
				setups++
				if got := s.With["go-version"]; got != want {
					t.Errorf("%s, job %s: setup-go go-version %q; go.mod says %s", rel(t, w), name, got, want)
				}
			}
		}
		if setups == 0 {
			t.Errorf("%s sets up no Go: its jobs would run the runner's", rel(t, w))
		}
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rel(t *testing.T, path string) string {
	t.Helper()
	r, err := filepath.Rel(repoRoot, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
