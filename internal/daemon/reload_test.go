package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/daemon"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// metric returns the value of one series on addr's /metrics, and whether it is there.
func metric(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// eventually polls cond until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otherSecret makes a secret beside env's, encrypted with key (empty: the AWS-managed key) and
// carrying tags of its own.
func otherSecret(t *testing.T, env *sandbox.Env, key string, tags int) string {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(env.SecretID + "-other"),
		SecretString: aws.String(`{"clientId":"amzn1.application-oa2-client.bbbb","clientSecret":"amzn1.oa2-cs.v1.x"}`)}
	if key != "" {
		in.KmsKeyId = aws.String(key)
	}
	for i := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(fmt.Sprintf("team-%d", i)), Value: aws.String("x")})
	}
	if _, err := env.AWS.SecretsManager.CreateSecret(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return env.SecretID + "-other"
}

func addApp(secretID string) func(string) string {
	return func(cfg string) string {
		return cfg + "  - name: second\n    clientId: amzn1.application-oa2-client.bbbb\n    region: eu\n    secretId: " + secretID + "\n"
	}
}

func TestReloadIsAsStrictAsStartUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit changes the running file; setup may make AWS resources first.
		edit        func(t *testing.T, env *sandbox.Env, cfg string) string
		wantProblem string
		wantPart    string
	}{
		{"an added application whose secret is on another KMS key", func(t *testing.T, env *sandbox.Env, cfg string) string {
			key, err := env.AWS.KMS.CreateKey(context.Background(), &kms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			return addApp(otherSecret(t, env, aws.ToString(key.KeyMetadata.Arn), 0))(cfg)
		}, "not the configured key", "vault"},
		{"an added application whose secret has no room for the daemon's tags", func(t *testing.T, env *sandbox.Env, cfg string) string {
			return addApp(otherSecret(t, env, env.KMSKeyARN, 45))(cfg)
		}, "needs room for 12 more", "vault"},
		{"a changed queue URL", func(t *testing.T, env *sandbox.Env, cfg string) string {
			return strings.Replace(cfg, "  newSecret: "+env.SecretQueue, "  newSecret: "+env.SecretQueue+"-moved", 1)
		}, "queues.newSecret: changes only on restart", "queues"},
		{"a changed secret format", func(_ *testing.T, _ *sandbox.Env, cfg string) string {
			return cfg + "secretFormat: lambda-sample\n"
		}, "secretFormat: changes only on restart", "vault"},
		{"a changed rejected retry", func(_ *testing.T, _ *sandbox.Env, cfg string) string {
			return strings.Replace(cfg, "  rejectedRetry: 15m0s\n", "  rejectedRetry: 20m\n", 1)
		}, "queues.rejectedRetry: changes only on restart", "queues"},
		{"a changed LWA endpoint", func(_ *testing.T, _ *sandbox.Env, cfg string) string {
			return strings.Replace(cfg, "  lwa: http://", "  lwa: https://", 1)
		}, "endpoints.lwa: changes only on restart", "endpoints"},
		{"an invalid file", func(_ *testing.T, _ *sandbox.Env, cfg string) string {
			return cfg + "clientSecret: x\n"
		}, "clientSecret (line", "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The daemon owns its log level here, so the log part's state can be read on /loglevel.
			r, err := startWith(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour}, nil, func(o *daemon.Options) { o.Level = nil })
			if err != nil {
				t.Fatal(err)
			}
			hash, ok := metric(t, r.addr, "lwa_rotator_config_hash")
			if !ok || hash == 0 {
				t.Fatalf("no configuration hash at start-up")
			}
			next := nextRotation(t, r)
			raw, err := os.ReadFile(r.env.ConfigPath)
			if err != nil {
				t.Fatal(err)
			}
			// Beside the change refused, changes every reloading part would take: none may run.
			edited := tc.edit(t, r.env, strings.Replace(strings.Replace(string(raw), "logLevel: info", "logLevel: debug", 1),
				"renewBefore: 30d", "renewBefore: 20d", 1))
			if !strings.Contains(edited, "logLevel: debug") || !strings.Contains(edited, "renewBefore: 20d") {
				t.Fatal("the reloadable changes were not made: the test would prove less")
			}
			if err := os.WriteFile(r.env.ConfigPath, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			r.signals <- syscall.SIGHUP
			eventually(t, 20*time.Second, "the reload refused and said why", func() bool {
				v, _ := metric(t, r.addr, "lwa_rotator_config_last_reload_successful")
				return v == 0 && r.logs.FilterMessage("SIGHUP: configuration reload failed; keeping the running configuration").
					Filter(func(e observerEntry) bool {
						return e.ContextMap()["part"] == tc.wantPart && strings.Contains(e.ContextMap()["problem"].(string), tc.wantProblem)
					}).Len() == 1
			})
			if n, _ := metric(t, r.addr, `lwa_rotator_config_reload_refusals_total{part="`+tc.wantPart+`"}`); n != 1 {
				t.Errorf("refusals_total{part=%q} = %v, want 1", tc.wantPart, n)
			}
			// Every part still runs the old configuration.
			if got, _ := metric(t, r.addr, "lwa_rotator_config_hash"); got != hash {
				t.Errorf("the configuration hash moved on a refused reload")
			}
			if _, body := get(t, "http://"+r.addr+"/loglevel"); !strings.Contains(body, `"level":"info"`) {
				t.Errorf("the log level moved on a refused reload: %s", body)
			}
			if got, _ := metric(t, r.addr, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`); got != next {
				t.Errorf("the next rotation moved on a refused reload (renewBefore applied)")
			}
			if _, ok := metric(t, r.addr, `lwa_rotator_secret_expiry_timestamp_seconds{application="second"}`); ok {
				t.Errorf("the refused application is running")
			}
			// The running configuration still works: a manual rotation completes.
			r.signals <- syscall.SIGUSR1
			if err := r.env.WaitRotated(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReloadAppliesAndMovesTheHash(t *testing.T) {
	t.Parallel()
	r, err := startWith(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour}, nil, func(o *daemon.Options) { o.Level = nil })
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := metric(t, r.addr, "lwa_rotator_config_hash")
	next := nextRotation(t, r)
	if _, body := get(t, "http://"+r.addr+"/loglevel"); !strings.Contains(body, `"level":"info"`) {
		t.Fatalf("the start-up's logLevel is not applied: %s", body)
	}
	raw, err := os.ReadFile(r.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(raw), "renewBefore: 30d", "renewBefore: 20d", 1)
	renamed = strings.Replace(renamed, "logLevel: info", "logLevel: warn", 1)
	renamed = addApp(otherSecret(t, r.env, r.env.KMSKeyARN, 3))(renamed)
	if err := os.WriteFile(r.env.ConfigPath, []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	r.signals <- syscall.SIGHUP
	eventually(t, 20*time.Second, "the new configuration running", func() bool {
		h, _ := metric(t, r.addr, "lwa_rotator_config_hash")
		_, second := metric(t, r.addr, `lwa_rotator_application_ready{application="second"}`)
		return h != hash && second
	})
	if v, _ := metric(t, r.addr, "lwa_rotator_config_last_reload_successful"); v != 1 {
		t.Fatalf("config_last_reload_successful = %v after a good reload", v)
	}
	if _, body := get(t, "http://"+r.addr+"/loglevel"); !strings.Contains(body, `"level":"warn"`) {
		t.Errorf("the reloaded logLevel is not applied: %s", body)
	}
	// renewBefore 30d → 20d: the rotation is planned 10 days (864,000 s) later.
	eventually(t, 20*time.Second, "the rotator planning with the new renewBefore", func() bool {
		got, _ := metric(t, r.addr, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
		return got == next+864000
	})
}

// nextRotation waits for the first pass to plan the sandbox's application and returns when.
func nextRotation(t *testing.T, r *running) float64 {
	t.Helper()
	var next float64
	eventually(t, 20*time.Second, "the first pass planning demo-app", func() bool {
		next, _ = metric(t, r.addr, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
		return next > 0
	})
	return next
}

func TestStartUpRefusesASecretWithoutTagRoom(t *testing.T) {
	t.Parallel()
	o := sandbox.EnvOptions{AWSEndpoint: motoURL, Dir: t.TempDir()}
	env, err := sandbox.NewEnv(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Close() })
	var tags []smtypes.Tag
	for i := range 45 {
		tags = append(tags, smtypes.Tag{Key: aws.String(fmt.Sprintf("team-%d", i)), Value: aws.String("x")})
	}
	if _, err := env.AWS.SecretsManager.TagResource(context.Background(), &secretsmanager.TagResourceInput{SecretId: aws.String(env.SecretID), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	err = runOnce(t, env)
	if err == nil || !strings.Contains(err.Error(), "  - vault: secret "+env.SecretID+" has 45 tags of its own; the daemon needs room for 12 more") {
		t.Fatalf("want the vault part's refusal naming the tag room, got %v", err)
	}
}

type observerEntry = observer.LoggedEntry

// runOnce starts the daemon on env and returns its start-up error, or nil after stopping it.
func runOnce(t *testing.T, env *sandbox.Env) error {
	t.Helper()
	sig := make(chan os.Signal, 1)
	done := make(chan error, 1)
	listening := make(chan string, 1)
	go func() {
		done <- daemon.Run(context.Background(), daemon.Options{ConfigPath: env.ConfigPath, Getenv: func(string) string { return "" },
			Listen: "127.0.0.1:0", AWS: env.AWSConfig(), Signals: sig, Log: zap.NewNop(), OnListen: func(a string) { listening <- a }})
	}()
	select {
	case err := <-done:
		return err
	case <-listening:
		sig <- syscall.SIGTERM
		return <-done
	}
}
