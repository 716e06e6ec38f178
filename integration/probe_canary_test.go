package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// TestProbeFindsASecretChangedByHand: the daily probe (every 2 s here) proves AWSCURRENT; a value
// then stored by hand (as after a rotation in the Developer Console by someone who pasted the
// wrong secret) is counted as an outside change and found invalid, the metric
// LWACurrentSecretInvalid reads, without any rotation.
func TestProbeFindsASecretChangedByHand(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, ExtraConfig: "probeInterval: 2s\n"})
	d := startDaemon(t, env)
	const valid = `lwa_rotator_current_secret_valid{application="demo-app"}`
	eventually(t, 20*time.Second, "the first probe to prove the seeded secret", func() bool {
		v, ok := d.scrape(t, valid)
		return ok && v == 1
	})

	wrong := secret.New("amzn1.oa2-cs.v1." + "0123456789abcdef0123456789abcdef")
	b, err := vault.Encode(vault.Record{ClientID: env.ClientID, ClientSecret: wrong, ExpiresAt: time.Now().Add(180 * 24 * time.Hour)}, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	// The console's way: a new version with a random id, made AWSCURRENT by the put itself.
	if _, err := env.AWS.SecretsManager.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(env.SecretID), SecretString: aws.String(string(b)),
		ClientRequestToken: aws.String("6f1c2a4e-0d3b-4c5e-9f7a-8b9c0d1e2f3a")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the change counted and the new value found invalid", func() bool {
		changed, _ := d.scrape(t, `lwa_rotator_current_changed_externally_total{application="demo-app"}`)
		v, ok := d.scrape(t, valid)
		return changed == 1 && ok && v == 0
	})
	if n := env.Sim.RotateCalls(env.ClientID); n != 0 {
		t.Errorf("%d rotate calls; a probe must never rotate", n)
	}
	assertNoSecret(t, d.output(), env.FirstSecret, wrong)
}

// TestCanaryRotatesAndItsBreakageShowsAlone: the canary (a draft application) is due at once (its
// first secret was minted long ago) and rotates through the production path while the production
// application, far from its expiry, is untouched. With Amazon's deliveries dropped (a broken
// queue policy looks the same from here), the canary's rotation times out, its last success stays
// where the alert sees it, and production is still untouched.
func TestCanaryRotatesAndItsBreakageShowsAlone(t *testing.T) {
	t.Parallel()
	for _, broken := range []bool{false, true} {
		name := map[bool]string{false: "healthy", true: "deliveries dropped"}[broken]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, Canary: true, AwaitDeadline: 5 * time.Second})
			canary := env.Applications[len(env.Applications)-1]
			if !canary.Canary {
				t.Fatal("the sandbox has no canary application")
			}
			if broken {
				env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Drop: true, Count: 1000})
			}
			started := time.Now()
			d := startDaemon(t, env)
			const last = `lwa_rotator_canary_last_success_timestamp_seconds{application="demo-canary"}`
			if broken {
				eventually(t, 30*time.Second, "the canary's rotation to time out", func() bool {
					v, _ := d.scrape(t, `lwa_rotator_rotations_total{application="demo-canary",result="timeout"}`)
					return v >= 1
				})
				every, _ := d.scrape(t, `lwa_rotator_canary_interval_seconds{application="demo-canary"}`)
				v, _ := d.scrape(t, last)
				if age := float64(time.Now().Unix()) - v; v <= 0 || age <= 2*every {
					t.Errorf("canary last success %v s ago with interval %v s: LWACanaryOverdue would not see it", age, every)
				}
			} else {
				eventually(t, 30*time.Second, "the canary to rotate", func() bool {
					v, _ := d.scrape(t, last)
					return v >= float64(started.Unix()-5) // minted just now (to the second, less clock slack)
				})
				newest, _, _ := env.Sim.Newest(canary.ClientID)
				cur, err := env.Store.Current(context.Background(), canary.SecretID)
				if err != nil || !cur.Record.ClientSecret.Equal(newest) {
					t.Errorf("the canary's AWSCURRENT is not its newest secret (err %v)", err)
				}
			}
			if n := env.Sim.RotateCalls(env.ClientID); n != 0 {
				t.Errorf("the production application got %d rotate calls; only the canary is due", n)
			}
			cur, err := env.Store.Current(context.Background(), env.SecretID)
			if err != nil || !cur.Record.ClientSecret.Equal(env.FirstSecret) {
				t.Errorf("the production application's AWSCURRENT changed (err %v)", err)
			}
		})
	}
}
