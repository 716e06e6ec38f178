package container

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostCABundle is Debian's ca-certificates bundle: the build stage (a Debian golang image) and this
// machine (Debian, ca-certificates installed by scripts/test-all.sh) have it at the same path.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// assembleRootfs lays out the image's files as the Dockerfile's last stage copies them, and
// nothing else. A source the test does not know how to reproduce fails the test, so the image
// cannot grow a file the container test does not run.
func assembleRootfs(t *testing.T, img image, binary, rootfs string) {
	t.Helper()
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	for dst, src := range img.files {
		from, path, _ := strings.Cut(src, ":")
		var hostPath string
		mode := os.FileMode(0o644)
		switch {
		case from == img.buildStage && path == img.buildOutput:
			hostPath, mode = binary, 0o755
		case from == img.buildStage && path == hostCABundle:
			hostPath = hostCABundle
		case from == "context":
			hostPath = filepath.Join(repoRoot, path)
		default:
			t.Fatalf("the Dockerfile copies %s from %s; the container test does not know that source", dst, src)
		}
		target := filepath.Join(rootfs, dst)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(hostPath, target, mode); err != nil {
			t.Fatalf("copying %s into the image: %v", dst, err)
		}
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// withListenPort keeps the image's LWA_ROTATOR_LISTEN host but moves it to port: the container
// shares the host's network, where 9464 may be taken.
func withListenPort(env []string, port string) ([]string, error) {
	out := make([]string, 0, len(env))
	found := false
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "LWA_ROTATOR_LISTEN="); ok {
			host, _, err := net.SplitHostPort(v)
			if err != nil {
				return nil, fmt.Errorf("the image's LWA_ROTATOR_LISTEN is not HOST:PORT: %w", err)
			}
			e, found = "LWA_ROTATOR_LISTEN="+net.JoinHostPort(host, port), true
		}
		out = append(out, e)
	}
	if !found {
		return nil, fmt.Errorf("the image sets no LWA_ROTATOR_LISTEN")
	}
	return out, nil
}

// writeSpec writes the OCI runtime configuration: the image's process as its user with no
// capabilities and no privilege gain, a read-only root, the configuration file bind-mounted
// read-only, a tmpfs /tmp, and the host's network namespace (moto and the simulator listen on the
// host's loopback). Everything else is what Docker gives a container.
func writeSpec(dir string, uid, gid int, args, env []string, configFile, configDest string) error {
	none := []string{}
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": uid, "gid": gid},
			"args":     args,
			"env":      env,
			"cwd":      "/",
			"capabilities": map[string]any{
				"bounding": none, "effective": none, "inheritable": none, "permitted": none, "ambient": none,
			},
			"rlimits":         []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "lwa-rotator",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
			{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "noexec", "mode=1777", "size=16m"}},
			{"destination": configDest, "type": "bind", "source": configFile, "options": []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
		},
		"linux": map[string]any{
			// No "network" entry: the container joins the host's network namespace.
			"namespaces": []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
			"maskedPaths": []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}
