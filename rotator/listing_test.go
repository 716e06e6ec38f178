package rotator

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// fleet is a Rotator over n applications, each with its own secret in one fake Secrets Manager.
type fleet struct {
	clk    *fakeclock.Fake
	sm     *fakesm.SM
	store  *vault.Store // the rotator's
	r      *Rotator
	apps   []App
	amzn   *fakeAmazon
	denied atomic.Bool // ListSecrets and BatchGetSecretValue answer AccessDenied

	mu        sync.Mutex
	described map[string]int // DescribeSecret calls by secret id
}

func newFleet(t *testing.T, n int, expiry func(i int) time.Time, poll time.Duration) *fleet {
	t.Helper()
	ctx := context.Background()
	fl := &fleet{clk: fakeclock.New(t0), described: map[string]int{}}
	fl.sm = fakesm.New(fakesm.Options{Clock: fl.clk, Fault: func(op, id string) fakesm.Fault {
		if op == fakesm.OpDescribeSecret {
			fl.mu.Lock()
			fl.described[id]++
			fl.mu.Unlock()
		}
		if fl.denied.Load() {
			return refuseListing(op, id)
		}
		return fakesm.Fault{}
	}})
	store := &vault.Store{SM: fl.sm, Clock: fl.clk}
	var key [32]byte
	copy(key[:], t.Name())
	model := amazon.New(amazon.Rules{}, amazon.IDsFrom(rand.NewChaCha8(key)))
	amzn := &fakeAmazon{clk: fl.clk, model: model}
	for i := range n {
		id := fmt.Sprintf("amzn1.application-oa2-client.app%02d", i)
		sid := fmt.Sprintf("lwa/app%02d", i)
		old := secret.New(fmt.Sprintf("amzn1.oa2-cs.v1.oldsecretoldsecretold%04d", i))
		if _, err := store.Create(ctx, sid, "", vault.Record{ClientID: id, ClientSecret: old, ExpiresAt: expiry(i)}); err != nil {
			t.Fatal(err)
		}
		if err := model.Register(t0, amazon.Application{ClientID: id, ApplicationID: fmt.Sprintf("amzn1.sp.solution.app%02d", i), Secret: old,
			SecretExpiresAt: expiry(i), NewSecretQueueURL: "https://sqs.example/new", ExpiryQueueURL: "https://sqs.example/expiry"}); err != nil {
			t.Fatal(err)
		}
		fl.apps = append(fl.apps, App{Name: fmt.Sprintf("app%02d", i), ClientID: id, Region: spapi.Region("na"), SecretID: sid})
	}
	fl.sm.ResetCalls()
	fl.store = &vault.Store{SM: fl.sm, Clock: fl.clk}
	r, err := New(Options{Apps: fl.apps, Settings: testSettings, Vault: fl.store, LWA: amzn, SPAPI: amzn,
		Clock: fl.clk, Rand: func() float64 { return 0.5 }, RequestPoll: poll})
	if err != nil {
		t.Fatal(err)
	}
	fl.r, fl.amzn = r, amzn
	return fl
}

// calls returns the Secrets Manager calls made since the last call to it.
func (fl *fleet) calls() map[string]int {
	c, _ := fl.callsAndDescribed()
	return c
}

// callsAndDescribed is calls, and the secrets described among them.
func (fl *fleet) callsAndDescribed() (map[string]int, map[string]int) {
	c := fl.sm.Calls()
	fl.sm.ResetCalls()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	d := maps.Clone(fl.described)
	clear(fl.described)
	return c, d
}

// TestPassesListQuietApplications: the start-up pass and the hourly re-check over many
// applications list their secrets (one ListSecrets per 100, one BatchGetSecretValue per 20 values
// not read before) instead of describing each; an application whose plan acts on its listed
// snapshot is read again on its own first, and the vault answers for a secret it wrote a moment
// ago with no listing, so that one is read on its own too.
func TestPassesListQuietApplications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 30
	fl := newFleet(t, n, func(i int) time.Time {
		if i == 7 {
			return t0.Add(20 * day) // inside renewBefore: due for a rotation
		}
		return t0.Add(150 * day)
	}, 0)
	fl.r.Tick(ctx)
	c, d := fl.callsAndDescribed()
	if c[fakesm.OpListSecrets] != 1 || c[fakesm.OpBatchGetSecretValue] != 2 {
		t.Errorf("start-up pass: %d ListSecrets and %d BatchGetSecretValue, want 1 and 2 (%v)", c[fakesm.OpListSecrets], c[fakesm.OpBatchGetSecretValue], c)
	}
	if c[fakesm.OpDescribeSecret] != 1 || d[fl.apps[7].SecretID] != 1 {
		t.Errorf("start-up pass: described %v, want only %s (due for a rotation, read fresh before acting) (%v)", d, fl.apps[7].SecretID, c)
	}
	for i, s := range fl.r.Snapshot() {
		want := PhaseIdle
		if i == 7 {
			want = PhaseRequested // its rotate call was made in this pass
		}
		if !s.Known || s.Phase != want || !s.CurrentExpiry.Equal(map[bool]time.Time{true: t0.Add(20 * day), false: t0.Add(150 * day)}[i == 7]) {
			t.Errorf("%s after the start-up pass: known %v, phase %v, expiry %v; want known, %v", s.App, s.Known, s.Phase, s.CurrentExpiry, want)
		}
	}

	if n := fl.amzn.calls(); n != 1 {
		t.Errorf("%d rotate calls after the start-up pass, want 1 (app07's)", n)
	}

	// The hourly re-check: values are cached, so the listing is the whole cost.
	fl.clk.Advance(time.Hour + time.Minute)
	fl.r.Tick(ctx)
	c = fl.calls()
	if c[fakesm.OpListSecrets] != 1 || c[fakesm.OpBatchGetSecretValue] != 0 || c[fakesm.OpGetSecretValue] != 0 {
		t.Errorf("hourly pass: %v, want 1 ListSecrets and no value reads", c)
	}
	if c[fakesm.OpDescribeSecret] > 1 {
		t.Errorf("hourly pass: %d DescribeSecret, want at most 1 (the application in flight)", c[fakesm.OpDescribeSecret])
	}

	// A secret the rotator's vault wrote a moment ago is read on its own, since a listing may
	// not show the write yet.
	fl.clk.Advance(time.Minute)
	if err := fl.store.ClearRequest(ctx, fl.apps[3].SecretID); err != nil {
		t.Fatal(err)
	}
	fl.calls()
	for _, a := range fl.r.reg.Load().order {
		a.nextAt.Store(0)
	}
	fl.r.Tick(ctx)
	c, d = fl.callsAndDescribed()
	if c[fakesm.OpListSecrets] != 1 || d[fl.apps[3].SecretID] != 1 || len(d) > 2 {
		t.Errorf("pass after a write to %s: described %v (%v); want 1 ListSecrets and a DescribeSecret for it (and at most one more, the one in flight)", fl.apps[3].SecretID, d, c)
	}
}

// TestPassesFallBackWhenListingIsDenied: an operator who refused the listing grant gets the
// per-application reads, and the refusal is asked only once.
func TestPassesFallBackWhenListingIsDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 12
	fl := newFleet(t, n, func(int) time.Time { return t0.Add(150 * day) }, 0)
	fl.denied.Store(true)
	fl.r.Tick(ctx)
	c := fl.calls()
	if c[fakesm.OpDescribeSecret] != n || c[fakesm.OpListSecrets] != 1 {
		t.Errorf("start-up pass with listing denied: %v, want one refused ListSecrets and %d DescribeSecret", c, n)
	}
	for _, s := range fl.r.Snapshot() {
		if !s.Known || s.Phase != PhaseIdle {
			t.Errorf("%s: known %v, phase %v; want known and idle", s.App, s.Known, s.Phase)
		}
	}
	fl.clk.Advance(time.Hour + time.Minute)
	fl.r.Tick(ctx)
	c = fl.calls()
	if c[fakesm.OpListSecrets] != 0 || c[fakesm.OpDescribeSecret] != n {
		t.Errorf("hourly pass with listing denied: %v, want no ListSecrets and %d DescribeSecret", c, n)
	}
}

// TestRequestWatchListsRequests: on a vault that can list, a round of the request watch is one
// ListSecrets filtered on the request tag, whatever the number of applications, and it marks
// the requesting application for a rotation.
func TestRequestWatchListsRequests(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 40
	fl := newFleet(t, n, func(int) time.Time { return t0.Add(150 * day) }, time.Minute)
	fl.r.Tick(ctx)
	tags, err := vault.RequestTags(vault.RotationRequest{At: t0, By: "ops@host"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.sm.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(fl.apps[5].SecretID), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	fl.calls()
	base := fl.clk.Created()
	done := make(chan struct{})
	go func() { defer close(done); fl.r.watchRequests(ctx) }()
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := fl.clk.WaitCreated(wctx, base+1); err != nil {
		t.Fatalf("the watch never waited for its round: %v", err)
	}
	fl.clk.Advance(time.Minute)
	// The round is over once the watch waits for the next one.
	if err := fl.clk.WaitCreated(wctx, base+2); err != nil {
		t.Fatalf("the watch never finished its round: %v", err)
	}
	cancel()
	<-done
	c := fl.calls()
	if c[fakesm.OpDescribeSecret] != 0 {
		t.Errorf("the watch described %d secrets, want 0 (it lists)", c[fakesm.OpDescribeSecret])
	}
	if c[fakesm.OpListSecrets] != 1 {
		t.Errorf("one round of the watch made %d ListSecrets calls, want 1", c[fakesm.OpListSecrets])
	}
	if got := fl.r.Snapshot()[5].RequestedAt; !got.Equal(t0) {
		t.Errorf("the request was not noticed: requested at %v, want %v", got, t0)
	}
	if !fl.r.reg.Load().order[5].dirty.Load() {
		t.Error("the requesting application was not marked for the next pass")
	}
	for i, s := range fl.r.Snapshot() {
		if i != 5 && !s.RequestedAt.IsZero() {
			t.Errorf("%s shows a request it never had", s.App)
		}
	}
}
