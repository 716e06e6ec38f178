package vault_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

var claimT0 = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

func claimBy(holder string) vault.Claim {
	return vault.Claim{Holder: holder, RotationID: "rot-" + strings.ReplaceAll(holder, "/", "-"), ClaimedAt: claimT0, Until: claimT0.Add(5 * time.Minute)}
}

// TestClaimTokenShape: a claim's version id is 64 characters, starts with "c-", and is never
// taken for a version the daemon staged from a notification.
func TestClaimTokenShape(t *testing.T) {
	t.Parallel()
	snap := vault.Snapshot{SecretID: "s", Current: vault.Version{ID: "v1"}, Labels: map[string][]string{"v1": {vault.StageCurrent}}}
	tok := vault.ClaimToken(snap)
	if len(tok) != 64 || !strings.HasPrefix(tok, "c-") || tok[32] != '-' {
		t.Errorf("ClaimToken = %q: want c-<30 hex>-<31 hex>", tok)
	}
	if vault.StagedByDaemon(tok) {
		t.Errorf("a claim's version id %s reads as a staged secret's", tok)
	}
	// Fields a rotate call does not write leave the token alone; those it writes change it.
	same := snap
	same.State.NoticedExpiry, same.State.Request.At = claimT0, claimT0
	if vault.ClaimToken(same) != tok {
		t.Error("a noticed expiry or an operator's request changed the claim token")
	}
	for name, mutate := range map[string]func(*vault.Snapshot){
		"a rotate call's time": func(s *vault.Snapshot) { s.State.LastCallAt = claimT0 },
		"an attempt counted":   func(s *vault.Snapshot) { s.State.Attempts = 1 },
		"AWSCURRENT moved":     func(s *vault.Snapshot) { s.Current.ID = "v2" },
		"the claim label moved": func(s *vault.Snapshot) {
			s.Labels = map[string][]string{"v1": {vault.StageCurrent}, tok: {vault.StageClaim}}
		},
	} {
		other := snap
		mutate(&other)
		if vault.ClaimToken(other) == tok {
			t.Errorf("%s left the claim token unchanged", name)
		}
	}
}

// TestOneReplicaWinsAClaim: replicas that read the same snapshot all try to claim it at once;
// exactly one writes the claim and every one of them is told who holds it.
func TestOneReplicaWinsAClaim(t *testing.T) {
	t.Parallel()
	for _, replicas := range []int{2, 3, 8} {
		f := newFixture(t)
		ctx := context.Background()
		snap := f.read(t)
		stores := make([]*vault.Store, replicas)
		for i := range stores {
			stores[i] = &vault.Store{SM: f.fake}
		}
		got := make([]vault.Claim, replicas)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				c, err := s.ClaimOn(ctx, snap, claimBy("pod-"+string(rune('a'+i))+"/1"))
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
				got[i] = c
			})
		}
		wg.Wait()
		winners := 0
		for i, c := range got {
			if c.Holder == "pod-"+string(rune('a'+i))+"/1" {
				winners++
			}
			if c != got[0] {
				t.Errorf("%d replicas: replica %d was told %+v, replica 0 %+v", replicas, i, c, got[0])
			}
		}
		if winners != 1 {
			t.Errorf("%d replicas: %d won the claim, want 1", replicas, winners)
		}
		if n := f.fake.Count(fakesm.OpPutSecretValue); n != replicas {
			t.Errorf("%d replicas: %d puts, want one each", replicas, n)
		}
		// The claim is a version of its own under the daemon's label; AWSCURRENT did not move.
		labels := f.fake.Versions(secretName)
		if !slices.Contains(labels[got[0].VersionID], vault.StageClaim) || !slices.Contains(labels[f.oldVer], vault.StageCurrent) {
			t.Errorf("labels after the claim: %v", labels)
		}
	}
}

// TestClaimRetryAfterALostAnswer: a put that took effect but whose answer was lost is this
// holder's claim when it asks again, with the first try's times.
func TestClaimRetryAfterALostAnswer(t *testing.T) {
	t.Parallel()
	var lose sync.Once
	fake := fakesm.New(fakesm.Options{Fault: func(op, _ string) fakesm.Fault {
		var flt fakesm.Fault
		if op == fakesm.OpPutSecretValue {
			lose.Do(func() { flt = fakesm.Fault{Err: errors.New("connection reset"), Applied: true} })
		}
		return flt
	}})
	s := &vault.Store{SM: fake}
	ctx := context.Background()
	if _, err := fake.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(secretName), SecretString: aws.String(`{"clientId":"c","clientSecret":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Read(ctx, secretName)
	if err != nil {
		t.Fatal(err)
	}
	first := claimBy("pod-a/1")
	if _, err := s.ClaimOn(ctx, snap, first); err == nil {
		t.Fatal("the lost answer was not reported")
	}
	again := first
	again.ClaimedAt, again.Until = claimT0.Add(time.Minute), claimT0.Add(6*time.Minute)
	c, err := (&vault.Store{SM: fake}).ClaimOn(ctx, snap, again)
	if err != nil {
		t.Fatal(err)
	}
	if c.Holder != "pod-a/1" || !c.ClaimedAt.Equal(claimT0) || !c.Until.Equal(claimT0.Add(5*time.Minute)) || c.RotationID != "rot-pod-a-1" {
		t.Errorf("retry was told %+v, want the first try's claim", c)
	}
}

// TestReadShowsOnlyTheClaimOnTheDueRotation: the label stays on the last claim; a snapshot names
// it only while it is a claim on the rotation due now, and reads its value once.
func TestReadShowsOnlyTheClaimOnTheDueRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	snap := f.read(t)
	if snap.Claim != nil {
		t.Fatalf("a secret never claimed shows claim %+v", snap.Claim)
	}
	won, err := (&vault.Store{SM: f.fake}).ClaimOn(ctx, snap, claimBy("pod-b/2"))
	if err != nil {
		t.Fatal(err)
	}
	f.fake.ResetCalls()
	after := f.read(t)
	if after.Claim == nil || *after.Claim != won {
		t.Fatalf("snapshot after the claim shows %+v, want %+v", after.Claim, won)
	}
	if n := f.fake.Count(fakesm.OpGetSecretValue); n != 1 {
		t.Errorf("reading the claim cost %d GetSecretValue, want 1", n)
	}
	f.fake.ResetCalls()
	if again := f.read(t); again.Claim == nil || f.fake.Count(fakesm.OpGetSecretValue) != 0 {
		t.Errorf("a second read shows %+v with %d GetSecretValue; want the claim from the cache", again.Claim, f.fake.Count(fakesm.OpGetSecretValue))
	}
	// The holder saves its intent: the rotation the claim was for is no longer the one due.
	st := after.State
	st.LastCallAt, st.RequestedAt = claimT0, claimT0
	if err := f.store.SaveChanges(ctx, secretName, after.State, st); err != nil {
		t.Fatal(err)
	}
	if later := f.read(t); later.Claim != nil {
		t.Errorf("after the intent the snapshot still shows claim %+v", later.Claim)
	}
	// A takeover of a lapsed claim is a new token, linked to the lapsed one, which one replica wins.
	next := vault.ClaimToken(after)
	if next == won.VersionID {
		t.Fatal("the takeover token is the lapsed claim's own")
	}
	c, err := f.store.ClaimOn(ctx, after, claimBy("pod-c/3"))
	if err != nil || c.Holder != "pod-c/3" || c.VersionID != next {
		t.Errorf("takeover: %+v, %v; want pod-c/3's claim under %s", c, err, next)
	}
}

// TestAMalformedClaimHasLapsed: a value under the claim label that is not a claim stops nothing.
func TestAMalformedClaimHasLapsed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	snap := f.read(t)
	tok := vault.ClaimToken(snap)
	if _, err := f.fake.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(secretName),
		ClientRequestToken: aws.String(tok), SecretString: aws.String("not json"), VersionStages: []string{vault.StageClaim}}); err != nil {
		t.Fatal(err)
	}
	got := f.read(t)
	if got.Claim == nil || got.Claim.VersionID != tok || !got.Claim.Until.IsZero() || got.Claim.Holder != "" {
		t.Errorf("malformed claim read as %+v, want a lapsed claim on %s", got.Claim, tok)
	}
}

// TestPromotedKeepsTheClaimLabel: Secrets Manager's label rules move AWSCURRENT, AWSPREVIOUS and
// leave the daemon's own label where it is.
func TestPromotedKeepsTheClaimLabel(t *testing.T) {
	t.Parallel()
	snap := vault.Snapshot{Current: vault.Version{ID: "old"}, Claim: &vault.Claim{VersionID: "c-x"},
		Labels: map[string][]string{"old": {vault.StageCurrent}, "new": {vault.StagePending}, "c-x": {vault.StageClaim}}}
	got := snap.Promoted(vault.Version{ID: "new"})
	want := map[string][]string{"new": {vault.StageCurrent, vault.StagePending}, "old": {vault.StagePrevious}, "c-x": {vault.StageClaim}}
	if len(got.Labels) != len(want) {
		t.Fatalf("labels %v, want %v", got.Labels, want)
	}
	for id, stages := range want {
		if !slices.Equal(got.Labels[id], stages) {
			t.Errorf("version %s: %v, want %v", id, got.Labels[id], stages)
		}
	}
	if got.Claim != nil {
		t.Errorf("a promotion ends the claimed rotation; snapshot still shows %+v", got.Claim)
	}
}

// TestInHandAndProbeTags: the two replica-shared records round-trip through the tags, and a
// holder name that is not a legal tag value is refused without being repeated.
func TestInHandAndProbeTags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	was := f.read(t).State
	st := was
	st.InHand = vault.Lease{Until: claimT0.Add(15 * time.Minute), By: "pod-a/1f2e3d4c"}
	st.Probe = vault.Probe{At: claimT0, Valid: true, VersionID: f.oldVer}
	if err := f.store.SaveChanges(ctx, secretName, was, st); err != nil {
		t.Fatal(err)
	}
	tags := f.fake.Tags(secretName)
	if got := tags["lwa-rotator:secret-in-hand"]; got != "2026-12-06T09:15:00Z pod-a/1f2e3d4c" {
		t.Errorf("secret-in-hand tag %q", got)
	}
	if got := tags["lwa-rotator:probed"]; got != "2026-12-06T09:00:00Z valid "+f.oldVer {
		t.Errorf("probed tag %q", got)
	}
	back := f.read(t).State
	if back.InHand != st.InHand || back.Probe != st.Probe {
		t.Errorf("read back %+v / %+v, want %+v / %+v", back.InHand, back.Probe, st.InHand, st.Probe)
	}
	if !back.InHand.Live(claimT0.Add(15*time.Minute-time.Nanosecond)) || back.InHand.Live(claimT0.Add(15*time.Minute)) {
		t.Error("the lease is not live exactly until its end")
	}
	bad := back
	bad.InHand.By = "pod#with{braces}"
	err := f.store.SaveChanges(ctx, secretName, back, bad)
	if err == nil || strings.Contains(err.Error(), "braces") {
		t.Errorf("an illegal holder name: %v", err)
	}
}

// TestClaimsAgainstMoto: the real service's rules decide the claim: the second replica's put
// under the same token is refused, and the label does not disturb the consumers' labels.
func TestClaimsAgainstMoto(t *testing.T) {
	t.Parallel()
	s, _, name, _, _ := motoSecret(t)
	ctx := context.Background()
	snap, err := s.Read(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	other := &vault.Store{SM: s.SM}
	won, err := s.ClaimOn(ctx, snap, claimBy("pod-a/1"))
	if err != nil || won.Holder != "pod-a/1" {
		t.Fatalf("first claim: %+v, %v", won, err)
	}
	lost, err := other.ClaimOn(ctx, snap, claimBy("pod-b/2"))
	if err != nil || lost != won {
		t.Fatalf("second replica was told %+v, %v; want the first replica's %+v", lost, err, won)
	}
	after, err := other.Read(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Current.ID != snap.Current.ID || after.Claim == nil || after.Claim.Holder != "pod-a/1" {
		t.Errorf("after the claim: current %s (was %s), claim %+v", after.Current.ID, snap.Current.ID, after.Claim)
	}
	if !slices.Contains(after.Labels[won.VersionID], vault.StageClaim) || len(after.Labels[won.VersionID]) != 1 {
		t.Errorf("claim version labels %v, want only %s", after.Labels[won.VersionID], vault.StageClaim)
	}
	cur, err := other.Current(ctx, name)
	if err != nil || cur.ID != snap.Current.ID {
		t.Errorf("AWSCURRENT read by a consumer: %s, %v; want %s", cur.ID, err, snap.Current.ID)
	}
}
