package scripts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryMutantStillApplies: a mutant whose text no longer occurs exactly once in its file is
// not a mutant any more, and scripts/mutants.sh would stop at it. The code moves; this keeps the
// list honest without running the mutants (which takes minutes).
func TestEveryMutantStillApplies(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("mutants.sh")
	if err != nil {
		t.Fatal(err)
	}
	text := string(script)
	start := strings.Index(text, "cat <<'EOF'\n")
	end := strings.Index(text[start+1:], "\nEOF\n")
	if start < 0 || end < 0 {
		t.Fatal("mutants.sh has no mutant list (cat <<'EOF' … EOF)")
	}
	lines := strings.Split(text[start+len("cat <<'EOF'\n"):start+1+end], "\n")
	if len(lines) < 10 {
		t.Fatalf("mutants.sh lists %d mutants, want the full list", len(lines))
	}
	unescape := strings.NewReplacer(`\n`, "\n", `\t`, "\t")
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 6 || (f[1] != "sim" && f[1] != "unit") {
			t.Errorf("mutant line %q: want name, sim or unit, file, from, to, what (tab-separated)", line)
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", f[2]))
		if err != nil {
			t.Errorf("mutant %s: %v", f[0], err)
			continue
		}
		if n := strings.Count(string(src), unescape.Replace(f[3])); n != 1 {
			t.Errorf("mutant %s: its text occurs %d times in %s, want once", f[0], n, f[2])
		}
	}
}
