package rotator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var probeSettings = func() *Settings {
	s := testSettings
	s.ProbeEvery = 24 * time.Hour
	return &s
}()

// tickAt moves the clock to at and runs a pass.
func (h *harness) tickAt(at time.Time) time.Time {
	h.clk.Set(at)
	return h.r.Tick(context.Background())
}

// runThrough runs every pass the rotator asks for up to and including at, and returns the next.
func (h *harness) runThrough(at time.Time) time.Time {
	h.t.Helper()
	next := h.r.Tick(context.Background())
	for i := 0; !next.After(at); i++ {
		if i > 10000 {
			h.t.Fatalf("more than 10000 passes before %v: the rotator does not let time pass", at)
		}
		next = h.tickAt(next)
	}
	return next
}

// TestProbeProvesTheCurrentSecretDaily: the first probe falls inside the first interval (at its
// middle with jitter 0.5), later ones an interval apart, each exactly one token call; LWA being
// down keeps the last verdict and tries again within the hour, once; LWA refusing the secret
// makes it invalid.
func TestProbeProvesTheCurrentSecretDaily(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(150 * day), settings: probeSettings})
	next := h.r.Tick(context.Background())
	if tokens, _ := h.amzn.counts(); tokens != 0 || h.status().CurrentValid != ValidityUnknown {
		t.Fatalf("first pass: %d token calls, validity %v; want no probe yet", tokens, h.status().CurrentValid)
	}
	if want := t0.Add(12 * time.Hour); next.After(want) {
		t.Fatalf("next pass at %v, want no later than the first probe at %v", next, want)
	}
	// Idle passes come hourly until the probe is due; only the probe calls LWA.
	h.runThrough(t0.Add(12 * time.Hour))
	if tokens, _ := h.amzn.counts(); tokens != 1 {
		t.Fatalf("%d token calls by the first probe, want 1", tokens)
	}
	if s := h.status(); s.CurrentValid != Valid || !s.LastProbe.Equal(t0.Add(12*time.Hour)) {
		t.Fatalf("after the first probe: %v at %v, want valid at %v", s.CurrentValid, s.LastProbe, t0.Add(12*time.Hour))
	}

	// A day later, with LWA down: one call, the verdict stands, another try within the hour.
	h.amzn.fail(&spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusServiceUnavailable, Kind: spapi.ErrTransient}, nil, false)
	probe2 := t0.Add(36 * time.Hour)
	retry := h.runThrough(probe2)
	if tokens, _ := h.amzn.counts(); tokens != 2 {
		t.Fatalf("%d token calls after the second probe, want 2", tokens)
	}
	if s := h.status(); s.CurrentValid != Valid {
		t.Fatalf("LWA down changed the verdict to %v", s.CurrentValid)
	}
	if retry.After(probe2.Add(time.Hour)) {
		t.Fatalf("next try at %v, want within the hour of %v", retry, probe2)
	}
	h.amzn.fail(nil, nil, false)
	h.tickAt(probe2.Add(time.Hour))
	if tokens, _ := h.amzn.counts(); tokens != 3 {
		t.Fatalf("%d token calls after LWA came back, want 3 (one retry, no storm)", tokens)
	}
}

// TestProbeFindsAValueStoredByHand: a version put by hand (the console's rotation stored by
// someone, with a UUID version id) is counted as an outside change and proven at once; LWA does
// not know it, so it is invalid. No rotation follows from the probe itself.
func TestProbeFindsAValueStoredByHand(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(150 * day), settings: probeSettings})
	next := h.r.Tick(context.Background())
	b, err := vault.Encode(vault.Record{ClientID: clientID, ClientSecret: secret.New("amzn1.oa2-cs.v1.typedbyhandtypedbyhandtyped"),
		ExpiresAt: t0.Add(170 * day)}, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sm.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(secretID),
		SecretString: aws.String(string(b)), ClientRequestToken: aws.String("0b6d2f9e-3c1a-4e5b-8a7d-6c5b4a3f2e1d")}); err != nil {
		t.Fatal(err)
	}
	h.tickAt(next)
	s := h.status()
	if s.ExternalChanges != 1 || s.CurrentValid != Invalid {
		t.Fatalf("after the hand edit: %d outside changes, validity %v; want 1, invalid", s.ExternalChanges, s.CurrentValid)
	}
	if tokens, _ := h.amzn.counts(); tokens != 1 || h.amzn.calls() != 0 {
		t.Fatalf("%d token calls, %d rotate calls; want 1 probe and no rotation", tokens, h.amzn.calls())
	}
}

// TestCanaryRotatesEveryInterval: a canary whose secret was minted a day ago rotates when the
// secret is canaryEvery old, whatever its expiry, and again canaryEvery after that promotion;
// its status names it a canary with its last rotation.
func TestCanaryRotatesEveryInterval(t *testing.T) {
	t.Parallel()
	minted := t0.Add(-day)
	h := newHarnessWith(t, setup{expiry: minted.Add(spapi.SecretLifetime), canary: true})
	h.runThrough(minted.Add(7*day - time.Second))
	if h.amzn.calls() != 0 {
		t.Fatalf("canary rotated before its secret was a week old")
	}
	h.tickAt(minted.Add(7 * day))
	if h.amzn.calls() != 1 {
		t.Fatalf("%d rotate calls when the canary's secret turned a week old, want 1", h.amzn.calls())
	}
	_, m := h.delivered()
	if res := h.handle(m); !res.Delete {
		t.Fatalf("the canary's new secret was not processed: %+v", res)
	}
	s := h.status()
	if !s.Canary || !s.CurrentMintedAt.Equal(minted.Add(7*day)) || s.CanaryInterval != 7*day {
		t.Fatalf("canary status = canary %v, minted %v, interval %v; want true, %v, %v", s.Canary, s.CurrentMintedAt, s.CanaryInterval,
			minted.Add(7*day), 7*day)
	}
	if s.ExternalChanges != 0 {
		t.Errorf("the daemon's own promotion counted as %d outside changes", s.ExternalChanges)
	}
	h.runThrough(minted.Add(14*day - time.Second))
	if h.amzn.calls() != 1 {
		t.Fatalf("canary rotated again before a week passed")
	}
	h.tickAt(minted.Add(14 * day))
	if h.amzn.calls() != 2 {
		t.Fatalf("%d rotate calls a week after the promotion, want 2", h.amzn.calls())
	}
}
