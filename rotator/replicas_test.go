package rotator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// A replica is another process over the harness's Secrets Manager, Amazon and clock, with its
// own vault.Store (and version cache), Dispatcher and name.
type replica struct {
	holder string
	r      *Rotator
	d      *notifications.Dispatcher
}

func (h *harness) replica(holder string, smAPI vault.SecretsManager) *replica {
	h.t.Helper()
	r, err := New(Options{Apps: []App{h.app}, Settings: h.set, Vault: &vault.Store{SM: smAPI, Log: h.log, Clock: h.clk},
		LWA: h.amzn, SPAPI: h.amzn, Clock: h.clk, Log: h.log.With(zap.String("replica", holder)), Observer: h.obs,
		Rand: func() float64 { return 0.5 }, Holder: holder})
	if err != nil {
		h.t.Fatal(err)
	}
	d := &notifications.Dispatcher{Receiver: r, Observer: h.obs, Log: h.log, RejectedRetry: rejectedRetry, RetryMin: time.Minute,
		RetryMax: time.Hour, Rand: func() float64 { return 0.5 }, Clock: h.clk}
	return &replica{holder: holder, r: r, d: d}
}

func (p *replica) handle(m notifications.Message) notifications.Result {
	res := p.d.Handle(context.Background(), m)
	if res.Then != nil {
		res.Then(context.Background())
	}
	return res
}

func (p *replica) status() Status { return p.r.Snapshot()[0] }

// together holds the first n puts until all n have arrived, so that n replicas read the secret
// before any of them writes: the race the claim exists for, every time.
func together(t *testing.T, n int) func(op, id string) fakesm.Fault {
	var arrived atomic.Int32
	all := make(chan struct{})
	return func(op, _ string) fakesm.Fault {
		if op != fakesm.OpPutSecretValue {
			return fakesm.Fault{}
		}
		switch k := arrived.Add(1); {
		case k == int32(n):
			close(all)
		case k < int32(n):
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Errorf("only %d of %d replicas came to claim the rotation", arrived.Load(), n)
			}
		}
		return fakesm.Fault{}
	}
}

// claimHolder is the holder named by the version carrying the claim label.
func claimHolder(t *testing.T, h *harness) string {
	t.Helper()
	for id, stages := range h.sm.Versions(secretID) {
		if slices.Contains(stages, vault.StageClaim) {
			v, _ := h.sm.Value(secretID, id)
			_, rest, _ := strings.Cut(v, `"holder":"`)
			name, _, _ := strings.Cut(rest, `"`)
			return name
		}
	}
	return ""
}

// TestReplicasMakeOneRotateCallPerDueRotation: two and three replicas read the due rotation
// before any of them writes, with Amazon accepting back-to-back calls; one wins the claim and
// calls, the others wait for it, and another replica than the caller promotes the secret.
func TestReplicasMakeOneRotateCallPerDueRotation(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(10 * day), amazonLimitOff: true})
			ctx := context.Background()
			reps := make([]*replica, n)
			for i := range reps {
				reps[i] = h.replica(fmt.Sprintf("pod-%c/%d", 'a'+i, i+1), h.sm)
			}
			meet := together(t, n)
			h.smFault.Store(&meet)
			var wg sync.WaitGroup
			for _, p := range reps {
				wg.Go(func() { p.r.Tick(ctx) })
			}
			wg.Wait()
			none := func(string, string) fakesm.Fault { return fakesm.Fault{} }
			h.smFault.Store(&none)

			if got := h.amzn.calls(); got != 1 {
				t.Fatalf("Amazon accepted %d rotate calls, want 1", got)
			}
			var caller *replica
			waiting := 0
			for _, p := range reps {
				switch s := p.status(); s.Reason {
				case ReasonAwaitingSecret:
					caller = p
				case ReasonClaimed:
					waiting++
					if !s.NextRotation.Equal(t0.Add(DefaultClaimLease)) {
						t.Errorf("%s waits until %s, want the claim's lapse %s", p.holder, s.NextRotation, t0.Add(DefaultClaimLease))
					}
				default:
					t.Errorf("%s: phase %s, reason %q", p.holder, s.Phase, s.Reason)
				}
			}
			if caller == nil || waiting != n-1 || claimHolder(t, h) != caller.holder {
				t.Fatalf("caller %v, %d waiting, claim held by %q; want one caller holding the claim and %d waiting", caller, waiting, claimHolder(t, h), n-1)
			}

			// The secret reaches a replica that did not call.
			other := reps[0]
			if other == caller {
				other = reps[1]
			}
			fresh, msg := h.delivered()
			if res := other.handle(msg); !res.Delete {
				t.Fatalf("delivery to %s: the message was not deleted", other.holder)
			}
			h.clk.Advance(3 * time.Hour) // past the await deadline and any claim
			for _, p := range reps {
				p.r.Tick(ctx)
				if s := p.status(); s.Phase != PhaseIdle {
					t.Errorf("%s after the promotion: phase %s, reason %q", p.holder, s.Phase, s.Reason)
				}
			}
			if w := h.world(); !w.cur.Record.ClientSecret.Equal(fresh) || w.pending || !w.state.RequestedAt.IsZero() {
				t.Errorf("after the rotation: current is the new secret %v, pending %v, requested-at %s", w.cur.Record.ClientSecret.Equal(fresh), w.pending, w.state.RequestedAt)
			}
			if got := h.amzn.calls(); got != 1 {
				t.Errorf("Amazon accepted %d rotate calls in all, want 1", got)
			}
		})
	}
}

// refusing fails the PutSecretValue calls that stage a secret (AWSPENDING) while on is set, and
// every TagResource while tags is set; everything else reaches the shared Secrets Manager.
type refusing struct {
	*fakesm.SM
	staging, tags atomic.Bool
}

func (f *refusing) PutSecretValue(ctx context.Context, in *sm.PutSecretValueInput, o ...func(*sm.Options)) (*sm.PutSecretValueOutput, error) {
	if f.staging.Load() && slices.Contains(in.VersionStages, vault.StagePending) {
		return nil, &types.InternalServiceError{Message: aws.String("injected")}
	}
	return f.SM.PutSecretValue(ctx, in, o...)
}

func (f *refusing) TagResource(ctx context.Context, in *sm.TagResourceInput, o ...func(*sm.Options)) (*sm.TagResourceOutput, error) {
	if f.tags.Load() {
		return nil, &types.InternalServiceError{Message: aws.String("injected")}
	}
	return f.SM.TagResource(ctx, in, o...)
}

// TestNoReplicaReRequestsASecretInHand: one replica calls; the secret reaches another, which
// cannot store it for two and a half hours (its puts of AWSPENDING fail; the await deadline is an
// hour). The caller's watchdog never asks again, and the delivered secret is what is promoted.
// When the holder stops saying so, the word lapses and the watchdog does ask again.
func TestNoReplicaReRequestsASecretInHand(t *testing.T) {
	t.Parallel()
	for _, holderStops := range []bool{false, true} {
		t.Run(fmt.Sprintf("holder stops %v", holderStops), func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), amazonLimitOff: true})
			ctx := context.Background()
			caller := h.replica("pod-a/1", h.sm)
			broken := &refusing{SM: h.sm}
			broken.staging.Store(true)
			holder := h.replica("pod-b/2", broken)
			caller.r.Trigger("app")
			caller.r.Tick(ctx)
			if h.amzn.calls() != 1 {
				t.Fatalf("the SIGUSR1 rotation made %d calls", h.amzn.calls())
			}
			fresh, msg := h.delivered()
			for range 30 { // 30 × 5 minutes
				if !holderStops || h.clk.Now().Before(t0.Add(5*time.Minute)) {
					if res := holder.handle(msg); res.Delete {
						t.Fatal("a delivery that could not be staged was deleted")
					}
				}
				h.clk.Advance(5 * time.Minute)
				caller.r.Tick(ctx)
				holder.r.Tick(ctx)
			}
			if holderStops {
				// The word lapsed 15 minutes after the one try; the watchdog then asks again at
				// every await deadline (an hour) plus its backoff, as it would with one replica.
				if got := h.amzn.calls(); got < 2 {
					t.Errorf("after the holder stopped: %d calls, want the watchdog to ask again", got)
				}
				return
			}
			if got := h.amzn.calls(); got != 1 {
				t.Fatalf("while a replica held the secret: %d rotate calls, want 1", got)
			}
			if s := caller.status(); s.Reason != ReasonSecretInHand {
				t.Errorf("the caller's status: phase %s, reason %q; want %q", s.Phase, s.Reason, ReasonSecretInHand)
			}
			broken.staging.Store(false)
			if res := holder.handle(msg); !res.Delete {
				t.Fatal("once Secrets Manager takes the put, the message was still not deleted")
			}
			w := h.world()
			if !w.cur.Record.ClientSecret.Equal(fresh) || !w.state.InHand.Until.IsZero() {
				t.Errorf("the delivered secret is current: %v; secret-in-hand left: %+v", w.cur.Record.ClientSecret.Equal(fresh), w.state.InHand)
			}
			if got := h.amzn.calls(); got != 1 {
				t.Errorf("%d rotate calls in all, want 1", got)
			}
		})
	}
}

// TestALapsedClaimIsTakenOver: a replica claims the due rotation but cannot save its intent (its
// tag writes fail), so it never calls. Another replica waits for the claim to lapse, then takes
// the rotation over under a claim of its own and makes the one call.
func TestALapsedClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(10 * day), amazonLimitOff: true})
	ctx := context.Background()
	broken := &refusing{SM: h.sm}
	broken.tags.Store(true)
	stuck := h.replica("pod-a/1", broken)
	other := h.replica("pod-b/2", h.sm)
	stuck.r.Tick(ctx)
	if claimHolder(t, h) != "pod-a/1" || h.amzn.calls() != 0 {
		t.Fatalf("claim held by %q, %d calls; want pod-a/1's claim and no call", claimHolder(t, h), h.amzn.calls())
	}
	other.r.Tick(ctx)
	if s := other.status(); s.Reason != ReasonClaimed || !s.NextRotation.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("the other replica: reason %q, next %s; want %q at %s", s.Reason, s.NextRotation, ReasonClaimed, t0.Add(5*time.Minute))
	}
	for _, at := range []time.Duration{time.Minute, 4*time.Minute + 59*time.Second} {
		h.clk.Set(t0.Add(at))
		stuck.r.Tick(ctx)
		other.r.Tick(ctx)
		if h.amzn.calls() != 0 {
			t.Fatalf("at +%s, before the claim lapsed: %d calls", at, h.amzn.calls())
		}
	}
	h.clk.Set(t0.Add(5 * time.Minute))
	other.r.Tick(ctx)
	if h.amzn.calls() != 1 || claimHolder(t, h) != "pod-b/2" {
		t.Errorf("after the lapse: %d calls, claim held by %q; want 1 call under pod-b/2's claim", h.amzn.calls(), claimHolder(t, h))
	}
	stuck.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Errorf("the first holder called too: %d calls", h.amzn.calls())
	}
}

// TestIdleRequestsScaleWithReplicas: three idle days (hourly re-checks, daily probes) cost N
// replicas no more than N times what they cost one; the probe is the fleet's, so LWA is asked
// once a day whatever N.
func TestIdleRequestsScaleWithReplicas(t *testing.T) {
	t.Parallel()
	type cost struct{ vault, lwa int }
	idle := func(n int) cost {
		set := testSettings
		set.ProbeEvery = 24 * time.Hour
		h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), settings: &set})
		reps := make([]*replica, n)
		for i := range reps {
			reps[i] = h.replica(fmt.Sprintf("pod-%c/%d", 'a'+i, i+1), h.sm)
		}
		ctx := context.Background()
		tokens0, _ := h.amzn.counts()
		h.sm.ResetCalls()
		next := make([]time.Time, n)
		for end := t0.Add(3 * day); h.clk.Now().Before(end); h.clk.Advance(time.Minute) {
			for i, p := range reps {
				if !h.clk.Now().Before(next[i]) {
					next[i] = p.r.Tick(ctx)
				}
			}
		}
		var c cost
		for _, k := range h.sm.Calls() {
			c.vault += k
		}
		tokens, _ := h.amzn.counts()
		c.lwa = tokens - tokens0
		return c
	}
	one := idle(1)
	if one.lwa != 3 {
		t.Errorf("one replica: %d LWA calls in three days, want 3 probes", one.lwa)
	}
	for _, n := range []int{2, 3} {
		got := idle(n)
		t.Logf("%d replicas: %d Secrets Manager requests, %d LWA calls (one replica: %d, %d)", n, got.vault, got.lwa, one.vault, one.lwa)
		// The replicas tick one after another here, so the first to probe has recorded its
		// verdict before the next one looks: exactly one probe a day.
		if got.vault > n*one.vault || got.lwa != 3 {
			t.Errorf("%d replicas: %d Secrets Manager requests and %d LWA calls; want at most %d and 3", n, got.vault, got.lwa, n*one.vault)
		}
	}
}

// TestSIGUSR1IsAnsweredWhoeverPromotes: the replica that got SIGUSR1 makes the call; another
// replica promotes the secret. The signal is answered by that secret: no further call, however
// often the first replica looks again.
func TestSIGUSR1IsAnsweredWhoeverPromotes(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), amazonLimitOff: true})
	ctx := context.Background()
	signalled := h.replica("pod-a/1", h.sm)
	other := h.replica("pod-b/2", h.sm)
	signalled.r.Trigger("app")
	signalled.r.Tick(ctx)
	other.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("SIGUSR1: %d calls, want 1", h.amzn.calls())
	}
	fresh, msg := h.delivered()
	if res := other.handle(msg); !res.Delete {
		t.Fatal("the other replica did not finish the delivery")
	}
	for range 6 { // three hours: past the await deadline twice over
		h.clk.Advance(30 * time.Minute)
		signalled.r.Tick(ctx)
		other.r.Tick(ctx)
	}
	if got := h.amzn.calls(); got != 1 {
		t.Errorf("after another replica promoted the signalled rotation's secret: %d calls, want 1", got)
	}
	if s := signalled.status(); s.Phase != PhaseIdle || s.Reason != ReasonRenewalScheduled {
		t.Errorf("the signalled replica: phase %s, reason %q; want idle, renewal-scheduled", s.Phase, s.Reason)
	}
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(fresh) {
		t.Error("the delivered secret is not current")
	}
	// A new signal asks for a secret newer than that one: one more call.
	signalled.r.Trigger("app")
	signalled.r.Tick(ctx)
	if got := h.amzn.calls(); got != 2 {
		t.Errorf("a second SIGUSR1: %d calls in all, want 2", got)
	}
}

// TestSIGUSR1RightAfterARotationRotatesAgain: a signal that arrives seconds after a rotation
// (Amazon's limit between calls set to a second, as in the sandbox) asks for a secret newer than
// the one just promoted, and gets it.
func TestSIGUSR1RightAfterARotationRotatesAgain(t *testing.T) {
	t.Parallel()
	set := testSettings
	set.RotateInterval = time.Second
	h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), amazonLimitOff: true, settings: &set})
	ctx := context.Background()
	for want := 1; want <= 2; want++ {
		h.r.Trigger("app")
		h.r.Tick(ctx)
		if got := h.amzn.calls(); got != want {
			t.Fatalf("SIGUSR1 number %d: %d calls in all, want %d", want, got, want)
		}
		_, msg := h.delivered()
		if res := h.handle(msg); !res.Delete {
			t.Fatalf("rotation %d: the delivery was not finished", want)
		}
		h.clk.Advance(2 * time.Second)
		h.r.Tick(ctx)
	}
}

// TestAPlantedSecretNeverTakesAStagedSecretsLabel: one replica staged a genuine secret and could
// not verify it (LWA down), so its message is gone: the vault holds it. Another replica then
// receives a newer secret that LWA refuses (planted). It is proven before it is put, so the
// genuine secret keeps AWSPENDING and is promoted once LWA answers again.
func TestAPlantedSecretNeverTakesAStagedSecretsLabel(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), amazonLimitOff: true})
	ctx := context.Background()
	first := h.replica("pod-a/1", h.sm)
	second := h.replica("pod-b/2", h.sm)
	first.r.Trigger("app")
	first.r.Tick(ctx)
	genuine, msg := h.delivered()
	h.amzn.fail(errors.New("lwa unreachable"), nil, false)
	if res := first.handle(msg); !res.Delete {
		t.Fatal("a staged secret's message was kept; staged is durable")
	}
	if w := h.world(); !w.pending {
		t.Fatal("the genuine secret is not staged")
	}
	h.amzn.fail(nil, nil, false)
	if res := second.handle(h.planted("n-planted", t0.Add(200*day))); res.Delete {
		t.Error("the planted secret's message was deleted")
	}
	w := h.world()
	labels := w.allVersions
	var pendingSecret string
	for id, stages := range labels {
		if slices.Contains(stages, vault.StagePending) && !slices.Contains(stages, vault.StageCurrent) {
			v, _ := h.sm.Value(secretID, id)
			rec, _ := vault.Decode([]byte(v), vault.FormatDefault)
			if rec.ClientSecret.Equal(genuine) {
				pendingSecret = id
			}
		}
	}
	if pendingSecret == "" {
		t.Fatalf("the genuine secret lost AWSPENDING to the planted one: %v", labels)
	}
	h.clk.Advance(time.Minute)
	first.r.Tick(ctx)
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(genuine) {
		t.Error("the genuine secret was not promoted once LWA answered")
	}
	if h.amzn.calls() != 1 {
		t.Errorf("%d rotate calls, want 1", h.amzn.calls())
	}
}
