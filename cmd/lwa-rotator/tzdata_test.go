package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBinaryEmbedsTheTimeZoneDatabase: the scratch image has no zoneinfo, so the binary carries
// its own; without it a rotationWindow's zone fails to load in the container.
func TestBinaryEmbedsTheTimeZoneDatabase(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", module+"cmd/lwa-rotator").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !slices.Contains(strings.Fields(string(out)), "time/tzdata") {
		t.Fatal("cmd/lwa-rotator does not link time/tzdata")
	}
}

// The host's zone database directories, as Go's time package searches them on Linux.
var hostZoneDirs = []string{"/usr/share/zoneinfo", "/usr/share/lib/zoneinfo", "/usr/lib/locale/TZ", "/etc/zoneinfo"}

// TestZoneLoadsWithoutTheHostDatabase runs this test binary again with ZONEINFO and GOROOT
// pointing to an empty directory and, where a mount namespace can be had (root, unshare), with the host's zone
// directories hidden under empty mounts: Europe/Berlin must still load, from the embedded copy.
// e2e/container proves the same in the image itself.
func TestZoneLoadsWithoutTheHostDatabase(t *testing.T) {
	if os.Getenv("LWA_ROTATOR_TZ_CHILD") == "1" {
		zoneChild()
		return
	}
	t.Parallel()
	args := []string{"-test.run=^TestZoneLoadsWithoutTheHostDatabase$"}
	cmd := exec.Command(os.Args[0], args...)
	hidden := false
	if _, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		var script strings.Builder
		for _, d := range hostZoneDirs {
			if _, err := os.Stat(d); err == nil {
				fmt.Fprintf(&script, "mount -t tmpfs none %s && ", d)
			}
		}
		script.WriteString(`exec "$0" "$@"`)
		cmd = exec.Command("unshare", append([]string{"-m", "sh", "-c", script.String(), os.Args[0]}, args...)...)
		hidden = true
	}
	// GOROOT too: Go's last resort is $GOROOT/lib/time/zoneinfo.zip, present where tests run.
	empty := t.TempDir()
	cmd.Env = append(os.Environ(), "LWA_ROTATOR_TZ_CHILD=1", "ZONEINFO="+empty, "GOROOT="+empty, fmt.Sprintf("LWA_ROTATOR_TZ_HIDDEN=%v", hidden))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("zone loaded")) {
		t.Fatalf("loading Europe/Berlin without the host's database: %v\n%s", err, out)
	}
	if !hidden {
		t.Log("no mount namespace here: only ZONEINFO pointed elsewhere; the host's database was still visible")
	}
}

// zoneChild loads the zone and checks both of its offsets; it prints the marker only on success.
func zoneChild() {
	if os.Getenv("LWA_ROTATOR_TZ_HIDDEN") == "true" {
		for _, d := range hostZoneDirs {
			if entries, err := os.ReadDir(d); err == nil && len(entries) > 0 {
				fmt.Printf("%s is not hidden\n", d)
				os.Exit(1)
			}
		}
	}
	if entries, _ := os.ReadDir(os.Getenv("ZONEINFO")); len(entries) > 0 {
		fmt.Println("ZONEINFO is not empty")
		os.Exit(1)
	}
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	_, summer := time.Date(2025, 6, 16, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	_, winter := time.Date(2025, 1, 13, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	if summer != 2*3600 || winter != 3600 {
		fmt.Printf("offsets %d and %d, want 7200 and 3600\n", summer, winter)
		os.Exit(1)
	}
	fmt.Println("zone loaded")
}

func TestCheckConfigPrintsWarningsAndPasses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	raw := `kmsKeyId: alias/lwa-rotator
queues:
  expiry: https://sqs.us-east-1.amazonaws.com/123456789012/expiry
  newSecret: https://sqs.us-east-1.amazonaws.com/123456789012/new-secret
rotationWindow:
  timeZone: Europe/Berlin
  open: ["Wed 10:00-11:00"]
applications:
  - name: main-app
    clientId: amzn1.application-oa2-client.aaaa
    region: na
    secretId: lwa/main-app
`
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "--config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("check-config failed on a warning: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "configuration OK") {
		t.Errorf("stdout = %q, want the OK line", stdout.String())
	}
	want := "warning: rotationWindow.open (line 7): open 1h0m0s a week in all, less than 2h0m0s"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}
