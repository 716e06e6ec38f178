package integration

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// assertRotated checks the whole end state of one completed rotation.
func assertRotated(t *testing.T, env *sandbox.Env, previous secret.Value) {
	t.Helper()
	ctx := context.Background()
	if err := env.WaitRotated(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cur, err := env.Store.Current(ctx, env.SecretID)
	if err != nil {
		t.Fatalf("reading AWSCURRENT: %v", err)
	}
	if !env.Sim.Valid(env.ClientID, cur.Record.ClientSecret) {
		t.Errorf("AWSCURRENT holds a secret LWA does not accept")
	}
	newest, newestExpiry, _ := env.Sim.Newest(env.ClientID)
	if !cur.Record.ClientSecret.Equal(newest) || !cur.Record.ExpiresAt.Equal(newestExpiry) {
		t.Errorf("AWSCURRENT is not the newest secret (expiry %v, want %v)", cur.Record.ExpiresAt, newestExpiry)
	}
	if cur.Record.PreviousExpiresAt.IsZero() {
		t.Errorf("the stored value lacks the previous secret's expiry")
	}
	prev, err := env.Store.Previous(ctx, env.SecretID)
	if err != nil {
		t.Fatalf("reading AWSPREVIOUS: %v", err)
	}
	if !prev.Record.ClientSecret.Equal(previous) {
		t.Errorf("AWSPREVIOUS is %s, want %s", spapisim.Fingerprint(prev.Record.ClientSecret), spapisim.Fingerprint(previous))
	}
	if !env.Sim.Valid(env.ClientID, prev.Record.ClientSecret) {
		t.Errorf("AWSPREVIOUS no longer works, but its old-secret grace period has not ended")
	}
	if _, pending, err := env.Store.Pending(ctx, env.SecretID); err != nil || pending {
		t.Errorf("AWSPENDING left behind: %v (err %v)", pending, err)
	}
	for _, q := range []string{env.ExpiryQueue, env.SecretQueue} {
		eventually(t, 10*time.Second, "queue "+q+" to drain", func() bool {
			n, err := env.QueueDepth(ctx, q)
			return err == nil && n == 0
		})
	}
}

func TestExpiryNoticeRotatesVerifiesAndPromotes(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		name := map[bool]string{false: "two queues", true: "one shared queue"}[shared]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, sandbox.EnvOptions{SharedQueue: shared})
			d := startDaemon(t, env)
			if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
				t.Fatal(err)
			}
			assertRotated(t, env, env.FirstSecret)
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Errorf("rotate endpoint called %d times, want 1", n)
			}
			eventually(t, 5*time.Second, "the success counter", func() bool {
				v, _ := d.scrape(t, `lwa_rotator_rotations_total{application="demo-app",result="success"}`)
				return v == 1
			})
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, d.output(), env.FirstSecret, newest)
		})
	}
}

func TestNoticeOutsideTheWindowIsScheduledNotActedOn(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 90 * 24 * time.Hour})
	d := startDaemon(t, env)
	if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the expiry notice processed", func() bool {
		v, _ := d.scrape(t, `lwa_rotator_notifications_total{application="demo-app",outcome="processed",type="APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY"}`)
		return v >= 1
	})
	eventually(t, 5*time.Second, "the planned rotation in metrics", func() bool {
		v, ok := d.scrape(t, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
		want := float64(time.Now().Add(60 * 24 * time.Hour).Unix())
		return ok && v > want-3600 && v < want+3600
	})
	if n := env.Sim.RotateCalls(env.ClientID); n != 0 {
		t.Fatalf("rotated %d times for a secret 90 days from expiry", n)
	}
}

func TestSIGUSR1RotatesNow(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	d := startDaemon(t, env)
	d.signal(t, syscall.SIGUSR1)
	assertRotated(t, env, env.FirstSecret)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint called %d times, want 1", n)
	}
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, d.output(), env.FirstSecret, newest)
}

func TestSIGHUPReloadsAndKeepsOldConfigOnError(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	d := startDaemon(t, env)
	good, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.ConfigPath, []byte("applications: [this is not valid"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash, _ := d.scrape(t, "lwa_rotator_config_hash")
	d.signal(t, syscall.SIGHUP)
	eventually(t, 10*time.Second, "config_last_reload_successful 0 after a bad reload", func() bool {
		v, ok := d.scrape(t, "lwa_rotator_config_last_reload_successful")
		return ok && v == 0
	})
	if v, _ := d.scrape(t, "lwa_rotator_config_hash"); v != hash {
		t.Fatalf("the running configuration's hash changed on a refused reload")
	}
	// The daemon still works on its old configuration: a manual rotation goes through.
	d.signal(t, syscall.SIGUSR1)
	assertRotated(t, env, env.FirstSecret)

	// A good file renaming the application takes effect.
	renamed := strings.Replace(string(good), "name: demo-app", "name: renamed-app", 1)
	if err := os.WriteFile(env.ConfigPath, []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	eventually(t, 10*time.Second, "the renamed application running after a good reload", func() bool {
		v, _ := d.scrape(t, "lwa_rotator_config_last_reload_successful")
		h, _ := d.scrape(t, "lwa_rotator_config_hash")
		_, renamed := d.scrape(t, `lwa_rotator_application_ready{application="renamed-app"}`)
		return v == 1 && h != hash && renamed
	})
}

func TestSIGTERMFinishesTheMessageInHandAndExitsZero(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{})
	d := startDaemon(t, env)
	// Slow LWA: the verification of the new secret is in hand when SIGTERM arrives.
	env.Sim.InjectFault(spapisim.Fault{Target: "token", Count: 2, Delay: 1500 * time.Millisecond})
	if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The new secret is staged and its verification (slowed down) is in hand.
	eventually(t, 30*time.Second, "the new secret staged as AWSPENDING", func() bool {
		_, ok, err := env.Store.Pending(context.Background(), env.SecretID)
		return err == nil && ok
	})
	d.signal(t, syscall.SIGTERM)
	if err := d.wait(t, 30*time.Second); err != nil {
		t.Fatalf("lwa-rotator exited with %v after SIGTERM, want status 0", err)
	}
	d.waitLog(t, time.Second, msgIs("lwa-rotator stopped"))
	assertRotated(t, env, env.FirstSecret)
}
