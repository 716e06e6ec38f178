// Package integration drives the real lwa-rotator binary against moto (SQS, Secrets Manager,
// KMS) and the SP-API/LWA simulator. Set LWA_ROTATOR_IT_REAL_AWS=1 to run the same tests against
// the AWS account of the standard credential chain instead of moto (see docs/testing.md).
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

var (
	binary string
	// crashBinary has the crash points compiled in (build tag lwa_rotator_crashpoints).
	crashBinary string
	motoURL     string
	// realAWS is set when the user opted in to real AWS.
	realAWS bool
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lwa-rotator-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "lwa-rotator")
	crashBinary = filepath.Join(dir, "lwa-rotator-crashpoints")
	// The production binary, and one with the crash points compiled in for the crash test only.
	builds := []*exec.Cmd{
		exec.Command("go", "build", "-race", "-o", binary, "../cmd/lwa-rotator"),
		exec.Command("go", "build", "-race", "-tags", "lwa_rotator_crashpoints", "-o", crashBinary, "../cmd/lwa-rotator"),
	}
	errs := make(chan error, len(builds))
	for _, b := range builds {
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		go func() { errs <- b.Run() }()
	}
	for range builds {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, "building lwa-rotator:", err)
			return 1
		}
	}
	realAWS = os.Getenv("LWA_ROTATOR_IT_REAL_AWS") == "1"
	if !realAWS {
		srv, err := moto.Start(context.Background(), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting moto:", err)
			return 1
		}
		defer srv.Stop()
		motoURL = srv.URL
	}
	return m.Run()
}

// newEnv makes a fresh world (own queues, key, secret and simulator) for one test.
func newEnv(t *testing.T, o sandbox.EnvOptions) *sandbox.Env {
	t.Helper()
	ctx := context.Background()
	o.AWSEndpoint = motoURL
	o.Dir = t.TempDir()
	if realAWS {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			t.Fatalf("loading the AWS configuration for the real-AWS run: %v", err)
		}
		o.RealAWS = &cfg
	}
	env, err := sandbox.NewEnv(ctx, o)
	if err != nil {
		t.Fatalf("creating the test world: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Close()
		if realAWS {
			if err := env.Destroy(context.Background()); err != nil {
				t.Errorf("cleaning up AWS resources: %v", err)
			}
		}
	})
	return env
}
