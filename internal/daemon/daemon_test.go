package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/vault"
)

var motoURL string

func TestMain(m *testing.M) {
	srv, err := moto.Start(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	motoURL = srv.URL
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

type running struct {
	env     *sandbox.Env
	signals chan os.Signal
	addr    string
	done    chan error
	logs    *observer.ObservedLogs
}

// start runs the daemon in-process; signals are plain channel values.
func start(t *testing.T, o sandbox.EnvOptions, getenv func(string) string) (*running, error) {
	t.Helper()
	return startWith(t, o, getenv, nil)
}

// startWith is start with edit changing the daemon's options last.
func startWith(t *testing.T, o sandbox.EnvOptions, getenv func(string) string, edit func(*daemon.Options)) (*running, error) {
	t.Helper()
	o.AWSEndpoint, o.Dir = motoURL, t.TempDir()
	env, err := sandbox.NewEnv(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Close() })
	core, logs := observer.New(zap.DebugLevel)
	lvl := zap.NewAtomicLevel()
	r := &running{env: env, signals: make(chan os.Signal, 4), done: make(chan error, 1), logs: logs}
	listening := make(chan string, 1)
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	do := daemon.Options{ConfigPath: env.ConfigPath, Getenv: getenv, Listen: "127.0.0.1:0",
		AWS: env.AWSConfig(), Signals: r.signals, Log: zap.New(core), Level: &lvl, OnListen: func(a string) { listening <- a }}
	if edit != nil {
		edit(&do)
	}
	go func() { r.done <- daemon.Run(context.Background(), do) }()
	select {
	case r.addr = <-listening:
		t.Cleanup(func() {
			r.signals <- syscall.SIGTERM
			<-r.done
		})
		return r, nil
	case err := <-r.done:
		return nil, err
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartsRotatesOnSIGUSR1AndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	r, err := start(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if code, body := get(t, "http://"+r.addr+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, "http://"+r.addr+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	r.signals <- syscall.SIGUSR1
	if err := r.env.WaitRotated(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	r.signals <- syscall.SIGTERM
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run returned %v after SIGTERM, want nil", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	if r.logs.FilterMessage("lwa-rotator stopped").Len() != 1 {
		t.Fatal("no stop line logged")
	}
}

func TestLogLevelChangesAtRuntime(t *testing.T) {
	t.Parallel()
	r, err := start(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+r.addr+"/loglevel", strings.NewReader(`{"level":"error"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, body := get(t, "http://"+r.addr+"/loglevel")
	var lv struct{ Level string }
	if err := json.Unmarshal([]byte(body), &lv); err != nil || lv.Level != "error" {
		t.Fatalf("level after PUT = %q (%v)", body, err)
	}
}

func TestAtRestChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		atRest  string
		wantErr bool
	}{
		{"refuse by default", "", true},
		{"warn starts anyway", "warn", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := ""
			if tc.atRest != "" {
				extra = "atRest: " + tc.atRest + "\n"
			}
			// The sandbox makes SSE-KMS queues; strip the queue's encryption to provoke the check.
			env, err := sandbox.NewEnv(context.Background(), sandbox.EnvOptions{AWSEndpoint: motoURL, Dir: t.TempDir(), ExtraConfig: extra})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = env.Close() })
			if _, err := env.AWS.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(env.ExpiryQueue),
				Attributes: map[string]string{"KmsMasterKeyId": "", "SqsManagedSseEnabled": "false"}}); err != nil {
				t.Fatal(err)
			}
			err = runOnce(t, env)
			if tc.wantErr != (err != nil) {
				t.Fatalf("Run = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr && (!errors.Is(err, vault.ErrAtRest) || !strings.Contains(err.Error(), "  - queues: queue "+env.ExpiryQueue+" has no server-side encryption")) {
				t.Fatalf("Run = %v, want the queues part's at-rest refusal naming the unencrypted queue", err)
			}
		})
	}
}

func TestPlainHTTPAWSEndpointRefused(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AWS_ENDPOINT_URL_SQS": "http://sqs.example.com"}
	_, err := start(t, sandbox.EnvOptions{}, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_SQS") {
		t.Fatalf("want a refusal naming AWS_ENDPOINT_URL_SQS, got %v", err)
	}
}

func TestSecretOnAnotherKeyRefused(t *testing.T) {
	t.Parallel()
	other, err := awstest.NewClients(motoURL, nil).KMS.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LWA_ROTATOR_KMS_KEY_ID": aws.ToString(other.KeyMetadata.Arn)}
	_, err = start(t, sandbox.EnvOptions{}, func(k string) string { return env[k] })
	if !errors.Is(err, vault.ErrAtRest) || !strings.Contains(err.Error(), "  - vault: secret ") || !strings.Contains(err.Error(), "not the configured key") {
		t.Fatalf("want a refusal for a secret on another key, got %v", err)
	}
}
