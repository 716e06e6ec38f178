package lwacreds_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spapi-tools/lwa-rotator/lwacreds"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConsumerAcrossARotation runs a consumer against moto (Secrets Manager) and the LWA
// simulator while the secret is rotated the way the daemon does it, with 50 concurrent
// callers at every step. Every call after the promotion must succeed, through the moment the
// old secret dies and after, whichever of the two refresh paths brings the new secret in.
func TestConsumerAcrossARotation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel) // after the parallel subtests, unlike defer
	var motoLogs lockedBuffer
	srv, err := moto.Start(ctx, &motoLogs)
	if err != nil {
		t.Fatalf("this test needs moto_server: %v", err)
	}
	t.Cleanup(srv.Stop)
	aws := awstest.NewClients(srv.URL, nil)

	tests := []struct {
		name     string
		interval time.Duration
		// refusals is how many invalid_client answers the consumer may see in all: none when
		// its periodic read picks up the new secret in time, exactly one (shared by the 50
		// callers) when only the refusal makes it read again.
		refusals int
		// promoteBefore is how long before the old secret dies the daemon promotes the new one.
		promoteBefore time.Duration
		// notYetAccepted makes LWA refuse the new secret once, an hour after the promotion, as
		// if Amazon had not yet propagated it: the consumer must fall back to AWSPREVIOUS.
		notYetAccepted bool
	}{
		{"default refresh interval", 0, 0, 10 * time.Minute, false},
		{"refresh interval longer than the late promotion", lwacreds.MaxRefreshInterval, 1, 10 * time.Minute, false},
		{"new secret refused at first: AWSPREVIOUS while it lives", 0, 1, 3 * time.Hour, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.New(t0)
			var simLogs lockedBuffer
			sim := spapisim.New(spapisim.Options{
				Clock: clk,
				Log:   zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&simLogs), zap.DebugLevel)),
			})
			t.Cleanup(sim.Close)
			lwa := httptest.NewServer(sim.Handler())
			t.Cleanup(lwa.Close)

			id := fmt.Sprintf("amzn1.application-oa2-client.rotation%d", i)
			old := secret.New("amzn1.oa2-cs.v1." + randomHex(t))
			if err := sim.Register(spapisim.App{
				ClientID: id, Secret: old, SecretExpiresAt: t0.Add(180 * 24 * time.Hour),
				NewSecretQueueURL: "http://sqs.invalid/000000000000/new-secret", // enrolled; deliveries fail, which is fine here
			}); err != nil {
				t.Fatalf("Register: %v", err)
			}
			name := fmt.Sprintf("lwa/consumer-rotation-%d-%s", i, randomHex(t)[:8])
			v1 := createSecret(ctx, t, aws.SecretsManager, name, vault.Record{ClientID: id, ClientSecret: old, ExpiresAt: t0.Add(180 * 24 * time.Hour)})

			store, err := lwacreds.NewStore(aws.SecretsManager, name, lwacreds.StoreOptions{RefreshInterval: tt.interval, Now: clk.Now})
			if err != nil {
				t.Fatalf("NewStore: %v", err)
			}
			ts, err := lwacreds.NewGrantlessTokenSource(store, spapi.Scope, lwacreds.TokenOptions{
				Endpoint: lwa.URL + "/auth/o2/token", HTTP: lwa.Client(), Now: clk.Now,
			})
			if err != nil {
				t.Fatalf("NewGrantlessTokenSource: %v", err)
			}
			var outputs []string
			everyCallSucceeds := func(step string) {
				t.Helper()
				const callers = 50
				var wg sync.WaitGroup
				errs := make([]error, callers)
				for c := range callers {
					wg.Go(func() {
						tok, err := ts.Token(ctx)
						errs[c] = err
						if err == nil && tok.AccessToken.IsZero() {
							errs[c] = fmt.Errorf("empty token")
						}
					})
				}
				wg.Wait()
				for c, err := range errs {
					if err != nil {
						t.Errorf("%s: caller %d: %v", step, c, err)
						outputs = append(outputs, err.Error())
					}
				}
			}

			everyCallSucceeds("before the rotation")

			// Amazon mints the new secret: an SP-API call made with the consumer's own token.
			// From here the old secret has seven days.
			rotatedAt := clk.Now()
			rotateWith(ctx, t, ts, lwa.URL)
			fresh, freshExp, _ := sim.Newest(id)
			oldExp := rotatedAt.Add(7 * 24 * time.Hour).Truncate(time.Millisecond)
			if fresh.Equal(old) || !sim.Valid(id, old) {
				t.Fatalf("the simulator did not rotate: new secret %s, old valid %v", spapisim.Fingerprint(fresh), sim.Valid(id, old))
			}

			// The daemon promotes late (it was down for most of the week), shortly before the old
			// secret dies; the consumer read the secret just before that.
			clk.Set(oldExp.Add(-tt.promoteBefore))
			everyCallSucceeds("the old secret's last hours, before the promotion")
			v2 := promote(ctx, t, aws.SecretsManager, name, v1, vault.Record{ClientID: id, ClientSecret: fresh, ExpiresAt: freshExp, PreviousExpiresAt: oldExp})
			everyCallSucceeds("just after the promotion")
			if tt.notYetAccepted {
				sim.InjectFault(spapisim.Fault{Target: spapisim.TargetToken, Status: http.StatusUnauthorized})
				clk.Advance(time.Hour) // token and secret cache both due: the new secret is tried
				everyCallSucceeds("the new secret refused once")
				if c, _ := store.Credentials(ctx); c.Stage != vault.StagePrevious || !c.ClientSecret.Equal(old) {
					t.Errorf("during the refusal the consumer uses %s, want AWSPREVIOUS with the old secret", c.Stage)
				}
			}

			clk.Set(oldExp)
			if sim.Valid(id, old) {
				t.Fatal("the old secret is still valid at its expiry")
			}
			everyCallSucceeds("the moment the old secret dies")
			// Every token minted before the death is now due, so LWA sees the secret.
			clk.Set(oldExp.Add(time.Hour - lwacreds.DefaultEarlyRefresh))
			everyCallSucceeds("the first token after the old secret died")
			clk.Advance(3 * time.Hour)
			everyCallSucceeds("hours later")

			c, err := store.Credentials(ctx)
			if err != nil || c.VersionID != v2 || !c.ClientSecret.Equal(fresh) || c.Stage != vault.StageCurrent {
				t.Errorf("the consumer ends on version %s %s (%v), want %s AWSCURRENT with the new secret", c.VersionID, c.Stage, err, v2)
			}
			refused := 0
			for _, r := range sim.Received() {
				if r.Endpoint == spapisim.TargetToken && r.Status == http.StatusUnauthorized {
					refused++
				}
			}
			if refused != tt.refusals {
				t.Errorf("LWA refused %d token requests, want %d", refused, tt.refusals)
			}
			outputs = append(outputs, simLogs.String(), motoLogs.String(), fmt.Sprintf("%v %+v %#v", c, c, c))
			assertNoSecret(t, []string{old.Reveal(), fresh.Reveal()}, outputs...)
		})
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

func encode(t *testing.T, r vault.Record) string {
	t.Helper()
	b, err := vault.Encode(r, vault.FormatDefault)
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return string(b)
}

func createSecret(ctx context.Context, t *testing.T, c *sm.Client, name string, r vault.Record) string {
	t.Helper()
	out, err := c.CreateSecret(ctx, &sm.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(encode(t, r)),
		ClientRequestToken: aws.String(vault.TokenFor(name + "/seed")),
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	return aws.ToString(out.VersionId)
}

// promote does what the daemon does once LWA has accepted the new secret: stage it as
// AWSPENDING, move AWSCURRENT onto it (AWS moves AWSPREVIOUS to the old version), and clear
// AWSPENDING.
func promote(ctx context.Context, t *testing.T, c *sm.Client, name, from string, r vault.Record) string {
	t.Helper()
	put, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(encode(t, r)),
		ClientRequestToken: aws.String(vault.TokenFor(name + "/rotation-1")), VersionStages: []string{vault.StagePending},
	})
	if err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	v := aws.ToString(put.VersionId)
	if _, err := c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String(vault.StageCurrent),
		MoveToVersionId: aws.String(v), RemoveFromVersionId: aws.String(from),
	}); err != nil {
		t.Fatalf("moving AWSCURRENT: %v", err)
	}
	if _, err := c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String(vault.StagePending), RemoveFromVersionId: aws.String(v),
	}); err != nil {
		t.Fatalf("removing AWSPENDING: %v", err)
	}
	return v
}

// rotateWith calls the SP-API rotate operation with a token from ts, the way any SP-API call
// uses the token source.
func rotateWith(ctx context.Context, t *testing.T, ts *lwacreds.TokenSource, base string) {
	t.Helper()
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/applications/2023-11-30/clientSecret", strings.NewReader(""))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("x-amz-access-token", tok.AccessToken.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rotate answered %d, want 204", resp.StatusCode)
	}
}
