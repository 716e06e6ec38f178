package rotator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// gatedSM holds each DescribeSecret until `want` are in flight together (or a guard passes), and
// records the most ever in flight.
type gatedSM struct {
	*fakesm.SM
	want int

	mu       sync.Mutex
	inFlight int
	most     int
	reached  chan struct{}
	once     sync.Once
}

func (g *gatedSM) DescribeSecret(ctx context.Context, in *sm.DescribeSecretInput, o ...func(*sm.Options)) (*sm.DescribeSecretOutput, error) {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	if g.inFlight >= g.want {
		g.once.Do(func() { close(g.reached) })
	}
	g.mu.Unlock()
	select {
	case <-g.reached:
	case <-time.After(guardWait):
	}
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	return g.SM.DescribeSecret(ctx, in, o...)
}

const guardWait = 5 * time.Second

// TestPassWorksOnApplicationsConcurrently: with PassConcurrency 4, a start-up pass over 20
// applications that cannot be listed (the listing grant refused) has four vault reads in flight
// at once, never more, and reads every application exactly once.
func TestPassWorksOnApplicationsConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := fakeclock.New(t0)
	g := &gatedSM{SM: fakesm.New(fakesm.Options{Clock: clk, Fault: refuseListing}), want: 4, reached: make(chan struct{})}
	store := &vault.Store{SM: g}
	var apps []App
	for i := range 20 {
		id := fmt.Sprintf("amzn1.application-oa2-client.app%02d", i)
		sid := fmt.Sprintf("secret-%02d", i)
		if _, err := store.Create(ctx, sid, "", vault.Record{ClientID: id, ClientSecret: secret.New("amzn1.oa2-cs.v1.x"), ExpiresAt: t0.Add(150 * day)}); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, App{Name: fmt.Sprintf("app%02d", i), ClientID: id, Region: spapi.Region("na"), SecretID: sid})
	}
	g.ResetCalls()
	r, err := New(Options{Apps: apps, Settings: testSettings, Vault: store, LWA: &fakeAmazon{clk: clk}, SPAPI: &fakeAmazon{clk: clk},
		Clock: clk, PassConcurrency: 4, Rand: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Tick(ctx)
	if took := time.Since(start); took >= guardWait {
		t.Fatalf("the pass took %v: four reads were never in flight together", took)
	}
	if g.most != 4 {
		t.Errorf("at most %d reads in flight, want exactly PassConcurrency (4)", g.most)
	}
	if n := g.Count(fakesm.OpDescribeSecret); n != len(apps) {
		t.Errorf("%d DescribeSecret calls for %d applications, want one each", n, len(apps))
	}
	for _, s := range r.Snapshot() {
		if !s.Known {
			t.Errorf("application %s was not read", s.App)
		}
	}
}
