package lwacreds_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/lwacreds"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func newStore(t *testing.T, f *countingSM, clk *fakeclock.Fake, o lwacreds.StoreOptions) *lwacreds.Store {
	t.Helper()
	o.Now = clk.Now
	s, err := lwacreds.NewStore(f, secretName, o)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

func TestNewStoreRefusesBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sm   lwacreds.SecretsManager
		id   string
		o    lwacreds.StoreOptions
		want string
	}{
		{"no client", nil, "x", lwacreds.StoreOptions{}, "client is nil"},
		{"no secret id", newSM(t), "", lwacreds.StoreOptions{}, "secret id is empty"},
		{"unknown format", newSM(t), "x", lwacreds.StoreOptions{Format: "yaml"}, "format"},
		{"negative interval", newSM(t), "x", lwacreds.StoreOptions{RefreshInterval: -time.Second}, "negative"},
		{"interval near the 7 days", newSM(t), "x", lwacreds.StoreOptions{RefreshInterval: 7 * 24 * time.Hour}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := lwacreds.NewStore(tt.sm, tt.id, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewStore error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStoreReadsBothFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		stored, asked vault.Format
	}{
		{"default", vault.FormatDefault, ""},
		{"lambda sample", vault.FormatLambdaSample, vault.FormatLambdaSample},
		{"lambda sample read as default", vault.FormatLambdaSample, vault.FormatDefault},
		{"default read as lambda sample", vault.FormatDefault, vault.FormatLambdaSample},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSM(t)
			prevExp := t0.Add(7 * 24 * time.Hour)
			f.promote(t, v1, record("secret-one", prevExp), tt.stored)
			s := newStore(t, f, fakeclock.New(t0), lwacreds.StoreOptions{Format: tt.asked})
			c, err := s.Credentials(context.Background())
			if err != nil {
				t.Fatalf("Credentials: %v", err)
			}
			if c.ClientID != clientID || c.ClientSecret.Reveal() != "secret-one" || c.VersionID != v1 ||
				c.Stage != vault.StageCurrent || !c.ExpiresAt.Equal(t0.Add(180*24*time.Hour)) {
				t.Errorf("Credentials = %+v, want %s/secret-one v1 AWSCURRENT expiring in 180 days", c, clientID)
			}
			assertNoSecret(t, []string{"secret-one"}, fmt.Sprintf("%v %+v %#v", c, c, c))
		})
	}
}

func TestStoreCachesForTheRefreshInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{"default", 0, lwacreds.DefaultRefreshInterval},
		{"ten minutes", 10 * time.Minute, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSM(t)
			clk := fakeclock.New(t0)
			f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
			s := newStore(t, f, clk, lwacreds.StoreOptions{RefreshInterval: tt.interval})
			ctx := context.Background()
			for range 5 {
				if _, err := s.Credentials(ctx); err != nil {
					t.Fatalf("Credentials: %v", err)
				}
			}
			f.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
			clk.Advance(tt.want - time.Nanosecond)
			if c, _ := s.Credentials(ctx); c.VersionID != v1 || f.readCount(vault.StageCurrent) != 1 {
				t.Fatalf("just before the interval: version %s after %d reads, want v1 after 1", c.VersionID, f.readCount(vault.StageCurrent))
			}
			clk.Advance(time.Nanosecond)
			if c, _ := s.Credentials(ctx); c.VersionID != v2 || f.readCount(vault.StageCurrent) != 2 {
				t.Fatalf("at the interval: version %s after %d reads, want v2 after 2", c.VersionID, f.readCount(vault.StageCurrent))
			}
		})
	}
}

func TestStoreRejectedReadsAtOnce(t *testing.T) {
	t.Parallel()
	f := newSM(t)
	clk := fakeclock.New(t0)
	f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
	s := newStore(t, f, clk, lwacreds.StoreOptions{})
	ctx := context.Background()
	old, err := s.Credentials(ctx)
	if err != nil {
		t.Fatalf("Credentials: %v", err)
	}
	f.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
	clk.Advance(time.Minute) // well inside the refresh interval

	next, err := s.Rejected(ctx, old)
	if err != nil {
		t.Fatalf("Rejected: %v", err)
	}
	if next.VersionID != v2 || next.ClientSecret.Reveal() != "secret-two" || next.Stage != vault.StageCurrent {
		t.Fatalf("Rejected gave %s %s, want v2 AWSCURRENT", next.VersionID, next.Stage)
	}
	if c, _ := s.Credentials(ctx); c.VersionID != v2 {
		t.Errorf("Credentials after the forced read = %s, want v2", c.VersionID)
	}
	if n := f.readCount(vault.StageCurrent); n != 2 {
		t.Errorf("AWSCURRENT reads = %d, want 2 (start, forced)", n)
	}
	if n := f.readCount(vault.StagePrevious); n != 0 {
		t.Errorf("AWSPREVIOUS reads = %d, want 0: the current secret changed, no fallback needed", n)
	}
}

func TestStoreFallsBackToPreviousOnlyWhileItLives(t *testing.T) {
	t.Parallel()
	week := 7 * 24 * time.Hour
	tests := []struct {
		name        string
		prevExp     time.Time
		prevClient  string
		advance     time.Duration
		wantPrev    bool
		wantErrText string
	}{
		{"previous alive", t0.Add(week), clientID, time.Hour - time.Minute, true, ""},
		{"previous alive to the last millisecond", t0.Add(time.Hour), clientID, time.Hour - time.Millisecond, true, ""},
		{"previous expired", t0.Add(time.Hour), clientID, time.Hour, false, "no usable client credentials"},
		{"previous expiry not recorded", time.Time{}, clientID, time.Minute, false, "no usable client credentials"},
		{"previous belongs to another client", t0.Add(week), "amzn1.application-oa2-client.other", time.Minute, false, "AWSPREVIOUS holds client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSM(t)
			clk := fakeclock.New(t0)
			prev := record("secret-one", time.Time{})
			prev.ClientID = tt.prevClient
			f.promote(t, v1, prev, vault.FormatDefault)
			f.promote(t, v2, record("secret-two", tt.prevExp), vault.FormatDefault)
			// A refresh interval longer than the advance, so only Rejected reads.
			s := newStore(t, f, clk, lwacreds.StoreOptions{RefreshInterval: 2 * time.Hour})
			ctx := context.Background()
			cur, err := s.Credentials(ctx)
			if err != nil || cur.VersionID != v2 {
				t.Fatalf("Credentials = %s, %v; want v2", cur.VersionID, err)
			}
			clk.Advance(tt.advance)

			next, err := s.Rejected(ctx, cur)
			if !tt.wantPrev {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("Rejected = %s, %v; want an error containing %q", next.VersionID, err, tt.wantErrText)
				}
				if !errors.Is(err, lwacreds.ErrNoUsableCredentials) {
					t.Errorf("error %v does not wrap ErrNoUsableCredentials", err)
				}
				assertNoSecret(t, []string{"secret-one", "secret-two"}, err.Error())
				if c, _ := s.Credentials(ctx); c.VersionID != v2 {
					t.Errorf("Credentials with nothing better = %s, want v2 as the last resort", c.VersionID)
				}
				return
			}
			if err != nil {
				t.Fatalf("Rejected: %v", err)
			}
			if next.VersionID != v1 || next.Stage != vault.StagePrevious || next.ClientSecret.Reveal() != "secret-one" || !next.ExpiresAt.Equal(tt.prevExp) {
				t.Fatalf("Rejected gave %s %s expiring %v, want v1 AWSPREVIOUS expiring %v", next.VersionID, next.Stage, next.ExpiresAt, tt.prevExp)
			}
			if c, _ := s.Credentials(ctx); c.VersionID != v1 {
				t.Errorf("Credentials during the fallback = %s, want v1", c.VersionID)
			}
			// The previous secret refused as well: nothing is left.
			if _, err := s.Rejected(ctx, next); !errors.Is(err, lwacreds.ErrNoUsableCredentials) {
				t.Errorf("Rejected(previous) = %v, want ErrNoUsableCredentials", err)
			}
		})
	}
}

func TestStoreFallbackEndsAtThePeriodicRead(t *testing.T) {
	t.Parallel()
	f := newSM(t)
	clk := fakeclock.New(t0)
	f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
	f.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
	s := newStore(t, f, clk, lwacreds.StoreOptions{})
	ctx := context.Background()
	cur, _ := s.Credentials(ctx)
	if next, err := s.Rejected(ctx, cur); err != nil || next.VersionID != v1 {
		t.Fatalf("Rejected = %s, %v; want v1", next.VersionID, err)
	}
	clk.Advance(lwacreds.DefaultRefreshInterval)
	if c, _ := s.Credentials(ctx); c.VersionID != v2 || c.Stage != vault.StageCurrent {
		t.Errorf("after the interval Credentials = %s %s, want v2 AWSCURRENT tried again", c.VersionID, c.Stage)
	}
}

func TestStoreOneReadInFlight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		call func(ctx context.Context, s *lwacreds.Store, c lwacreds.Credentials) (lwacreds.Credentials, error)
		want string
	}{
		{"periodic", func(ctx context.Context, s *lwacreds.Store, _ lwacreds.Credentials) (lwacreds.Credentials, error) {
			return s.Credentials(ctx)
		}, v2},
		{"after invalid_client", func(ctx context.Context, s *lwacreds.Store, c lwacreds.Credentials) (lwacreds.Credentials, error) {
			return s.Rejected(ctx, c)
		}, v2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSM(t)
			clk := fakeclock.New(t0)
			f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
			s := newStore(t, f, clk, lwacreds.StoreOptions{})
			ctx := context.Background()
			old, _ := s.Credentials(ctx)
			f.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
			clk.Advance(lwacreds.DefaultRefreshInterval)

			gate := make(chan struct{})
			f.setGate(gate)
			const callers = 50
			var wg sync.WaitGroup
			got := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() {
					c, err := tt.call(ctx, s, old)
					got[i], errs[i] = c.VersionID, err
				})
			}
			waitFor(t, "the shared read to start", func() bool { return f.readCount(vault.StageCurrent) == 2 })
			close(gate)
			wg.Wait()
			for i := range callers {
				if errs[i] != nil || got[i] != tt.want {
					t.Errorf("caller %d: %s, %v; want %s", i, got[i], errs[i], tt.want)
				}
			}
			if n, m := f.readCount(vault.StageCurrent), f.maxInFlight(); n != 2 || m != 1 {
				t.Errorf("AWSCURRENT reads = %d with at most %d at once, want 2 with 1", n, m)
			}
		})
	}
}

func TestStoreKeepsServingWhenAReadFails(t *testing.T) {
	t.Parallel()
	f := newSM(t)
	clk := fakeclock.New(t0)
	f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
	var mu sync.Mutex
	var hidden []error
	s := newStore(t, f, clk, lwacreds.StoreOptions{OnReadError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		hidden = append(hidden, err)
	}})
	ctx := context.Background()
	if _, err := s.Credentials(ctx); err != nil {
		t.Fatalf("Credentials: %v", err)
	}
	f.setFail(&types.InternalServiceError{Message: strPtr("service unavailable")})
	clk.Advance(lwacreds.DefaultRefreshInterval)
	for range 3 { // one failed read, then the backoff keeps the others from reading
		c, err := s.Credentials(ctx)
		if err != nil || c.VersionID != v1 {
			t.Fatalf("Credentials during the outage = %s, %v; want the cached v1", c.VersionID, err)
		}
	}
	if n := f.readCount(vault.StageCurrent); n != 2 {
		t.Errorf("AWSCURRENT reads = %d, want 2: the backoff spaces out reads during an outage", n)
	}
	mu.Lock()
	if len(hidden) != 1 || !strings.Contains(hidden[0].Error(), "lwa/consumer") {
		t.Errorf("OnReadError got %v, want one error naming the secret", hidden)
	}
	mu.Unlock()
	f.setFail(nil)
	clk.Advance(time.Minute)
	if _, err := s.Credentials(ctx); err != nil || f.readCount(vault.StageCurrent) != 3 {
		t.Errorf("after the backoff: %v after %d reads, want a third, successful read", err, f.readCount(vault.StageCurrent))
	}
}

func TestStoreReportsWhyItHasNoSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *countingSM)
		wantIs error
		want   string
	}{
		{"access denied", func(_ *testing.T, f *countingSM) { f.setFail(errBoom) }, errBoom, "reading secret lwa/consumer (AWSCURRENT)"},
		{"no AWSCURRENT", func(*testing.T, *countingSM) {}, nil, "can't find the specified secret value"},
		{"not JSON", func(t *testing.T, f *countingSM) { f.putRaw(t, v1, "secret-one") }, vault.ErrMalformed, "malformed"},
		{"no client secret", func(t *testing.T, f *countingSM) { f.putRaw(t, v1, `{"clientId":"x","clientSecretX":"secret-one"}`) }, vault.ErrMalformed, "no client secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSM(t)
			tt.setup(t, f)
			s := newStore(t, f, fakeclock.New(t0), lwacreds.StoreOptions{})
			_, err := s.Credentials(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Credentials error = %v, want one containing %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			assertNoSecret(t, []string{"secret-one"}, err.Error())
		})
	}
}

func TestStoreWaiterHonoursItsContext(t *testing.T) {
	t.Parallel()
	f := newSM(t)
	f.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
	gate := make(chan struct{})
	f.setGate(gate)
	s := newStore(t, f, fakeclock.New(t0), lwacreds.StoreOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Credentials(ctx)
		done <- err
	}()
	waitFor(t, "the read to start", func() bool { return f.readCount(vault.StageCurrent) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Credentials after cancel = %v, want context.Canceled", err)
	}
	// The shared read was not cancelled with that caller: the next caller gets its result.
	close(gate)
	if c, err := s.Credentials(context.Background()); err != nil || c.VersionID != v1 {
		t.Errorf("next Credentials = %s, %v; want v1", c.VersionID, err)
	}
	if n := f.readCount(vault.StageCurrent); n != 1 {
		t.Errorf("AWSCURRENT reads = %d, want 1", n)
	}
}

func strPtr(s string) *string { return &s }
