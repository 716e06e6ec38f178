package helm_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readmeCommands returns the shell commands of the ```sh blocks of a Markdown file, with
// backslash continuations joined and trailing comments removed.
func readmeCommands(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	in, cont := false, ""
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		}
		if !in {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if next, ok := strings.CutSuffix(line, "\\"); ok {
			cont += next + " "
			continue
		}
		if line = strings.TrimSpace(cont + line); line != "" {
			cmds = append(cmds, line)
		}
		cont = ""
	}
	return cmds
}

// TestReadmeHelmCommands runs the chart README's helm commands from the repository root, as a user
// would: `cp` of the example values, `helm lint` and `helm template` as written, and
// `helm install` / `helm upgrade` as `helm template` with the same release, chart, namespace and
// values (CI has no cluster; --create-namespace, --wait and --timeout only matter to one).
// `helm uninstall`, kubectl, aws and eksctl need a cluster or an account and are not run.
func TestReadmeHelmCommands(t *testing.T) {
	t.Parallel()
	repoRoot, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	userValues := filepath.Join(tmp, "my-values.yaml")
	seen := map[string]bool{}
	for _, line := range readmeCommands(t, filepath.Join(chartDir, "README.md")) {
		args := strings.Fields(line)
		switch {
		case args[0] == "cp" && len(args) == 3 && args[2] == "my-values.yaml":
			b, err := os.ReadFile(filepath.Join(repoRoot, args[1]))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if err := os.WriteFile(userValues, b, 0o600); err != nil {
				t.Fatal(err)
			}
			seen["cp"] = true
		case args[0] == "helm" && len(args) > 1:
			verb := args[1]
			if verb == "uninstall" {
				seen[verb] = true
				continue
			}
			if !slices.Contains([]string{"lint", "template", "install", "upgrade"}, verb) {
				t.Errorf("README runs `helm %s`, which this test does not know how to exercise", verb)
				continue
			}
			if _, err := os.Stat(userValues); err != nil {
				t.Fatalf("%s: runs before the README copies my-values.yaml", line)
			}
			run := []string{}
			for i := 1; i < len(args); i++ {
				a := args[i]
				switch a {
				case "--create-namespace", "--wait":
					continue
				case "--timeout":
					i++
					continue
				case "my-values.yaml":
					a = userValues
				}
				run = append(run, a)
			}
			if verb == "install" || verb == "upgrade" {
				run[0] = "template"
				if !slices.Contains(run, "--namespace") || !slices.Contains(run, "-f") {
					t.Errorf("%s: want --namespace and -f my-values.yaml", line)
				}
			}
			out, err := runHelmIn(t, repoRoot, run...)
			if err != nil {
				t.Errorf("README command %q: %v", line, err)
				continue
			}
			if run[0] == "template" {
				o := &objects{}
				for _, d := range splitDocuments(out) {
					if err := o.add(d); err != nil {
						t.Errorf("%s: %v", line, err)
					}
				}
				// The README's trust policy names this service account.
				if len(o.serviceAccounts) != 1 || o.serviceAccounts[0].Name != "lwa-rotator" || o.serviceAccounts[0].Namespace != "lwa-rotator" {
					t.Errorf("%s: want ServiceAccount lwa-rotator/lwa-rotator, the one the README's IAM trust names", line)
				}
			}
			seen[verb] = true
		}
	}
	for _, want := range []string{"cp", "lint", "template", "install", "upgrade", "uninstall"} {
		if !seen[want] {
			t.Errorf("README has no working %s command; this test expects the install, upgrade and removal steps", want)
		}
	}
}
