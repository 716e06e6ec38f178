package main

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/spapi-tools/lwa-rotator/"

// testWorld returns the packages of deps that belong to the test world: everything under
// testsupport/, and any package named like a fake, a simulator or an installer wherever it lives.
func testWorld(deps []string) []string {
	var out []string
	for _, p := range deps {
		if !strings.HasPrefix(p, module) {
			continue
		}
		rel := strings.TrimPrefix(p, module)
		base := path.Base(rel)
		if strings.HasPrefix(rel, "testsupport/") || strings.HasPrefix(base, "fake") || strings.HasSuffix(base, "sim") ||
			slices.Contains([]string{"moto", "awstest", "sandbox", "simulation", "configtest", "amazon", "bench"}, base) {
			out = append(out, p)
		}
	}
	return out
}

func TestTestWorldNamesEveryKindOfDouble(t *testing.T) {
	t.Parallel()
	deps := []string{
		"fmt",
		module + "rotator",
		module + "vault",
		module + "internal/daemon",
		module + "testsupport/fakesm",
		module + "testsupport/simulation",
		module + "internal/moto",
		module + "spapi/spapisim",
		module + "internal/fakeclock",
		"github.com/other/fakesm",
	}
	want := []string{module + "testsupport/fakesm", module + "testsupport/simulation", module + "internal/moto",
		module + "spapi/spapisim", module + "internal/fakeclock"}
	if got := testWorld(deps); !slices.Equal(got, want) {
		t.Errorf("testWorld = %v, want %v", got, want)
	}
}

// TestShippedBinariesLinkNoTestWorld: the daemon holds credentials in production; a security
// reviewer must find no fake, simulator or installer (the moto launcher runs pip) in what it
// links. The sandbox is a command of its own for that reason.
func TestShippedBinariesLinkNoTestWorld(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{module + "cmd/lwa-rotator", module + "lwacreds"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, module+"vault/secret") {
			t.Fatalf("go list -deps %s lists %d packages without vault/secret: it did not read the real dependency set", pkg, len(deps))
		}
		if bad := testWorld(deps); len(bad) > 0 {
			t.Errorf("%s links test support: %v", pkg, bad)
		}
	}
	// The check sees test support where it is linked: the sandbox command links it by design.
	out, err := exec.Command("go", "list", "-deps", module+"cmd/lwa-rotator-sandbox").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/lwa-rotator-sandbox: %v", err)
	}
	if !slices.Contains(testWorld(strings.Fields(string(out))), module+"testsupport/sandbox") {
		t.Error("testWorld does not see testsupport/sandbox in the sandbox command's dependencies")
	}
}
