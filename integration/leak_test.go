package integration

import (
	"strings"
	"sync"
	"testing"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// allOutput is every line every daemon process of the suite wrote.
var allOutput struct {
	mu    sync.Mutex
	lines []string
}

func recordOutput(line string) {
	allOutput.mu.Lock()
	defer allOutput.mu.Unlock()
	allOutput.lines = append(allOutput.lines, line)
}

// assertNoSecret fails if any secret value appears in output. Both the whole value and its random
// tail are searched, so a truncated or re-prefixed leak is caught too.
func assertNoSecret(t *testing.T, output string, secrets ...secret.Value) {
	t.Helper()
	if strings.TrimSpace(output) == "" {
		t.Fatal("no output to scan: the leak check would prove nothing")
	}
	for _, s := range secrets {
		if !s.IsZero() && leaks(output, s) {
			t.Errorf("a secret value appears in the daemon's output")
		}
	}
}

func TestAssertNoSecretCatchesALeak(t *testing.T) {
	t.Parallel()
	s := secret.New("amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef")
	leaky := `{"msg":"oops","secret":"0123456789abcdef0123456789abcdef"}`
	if !leaks(leaky, s) {
		t.Fatal("the leak scanner missed a leaked secret tail")
	}
	if leaks(`{"msg":"fine","secret":"[REDACTED]"}`, s) {
		t.Fatal("the leak scanner reported a leak in clean output")
	}
}

func leaks(output string, s secret.Value) bool {
	v := s.Reveal()
	tail := v[strings.LastIndex(v, ".")+1:]
	return strings.Contains(output, v) || (len(tail) >= 16 && strings.Contains(output, tail))
}
