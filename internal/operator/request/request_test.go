package request

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestCheck(t *testing.T) {
	t.Parallel()
	ok := Snapshot{CurrentVersionID: "v1"}
	with := func(f func(*Snapshot)) Snapshot {
		s := ok
		f(&s)
		return s
	}
	tests := []struct {
		name string
		s    Snapshot
		want string // "" accepts
	}{
		{"nothing going on", ok, ""},
		{"no current version", Snapshot{}, "no AWSCURRENT"},
		{"in flight", with(func(s *Snapshot) { s.State.RequestedAt, s.State.RotationID = now.Add(-time.Minute), "r1" }), "already in flight since 2026-06-01T11:59:00Z (rotation r1)"},
		{"pending version", with(func(s *Snapshot) { s.PendingVersionID = "v2" }), "version v2"},
		{"request pending", with(func(s *Snapshot) { s.State.Request = vault.RotationRequest{At: now.Add(-time.Second), By: "ann@h"} }), "already requested at 2026-06-01T11:59:59Z by ann@h"},
		{"served request left behind", with(func(s *Snapshot) {
			s.State.Request = vault.RotationRequest{At: now.Add(-time.Hour)}
			s.State.ServedRequest = now.Add(-time.Hour)
		}), ""},
		{"rotate call 30s ago", with(func(s *Snapshot) { s.State.LastCallAt = now.Add(-30 * time.Second) }), "try again after 2026-06-01T12:00:30Z"},
		{"rotate call a minute ago", with(func(s *Snapshot) { s.State.LastCallAt = now.Add(-time.Minute) }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tc.s, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want ErrRefused saying %q", err, tc.want)
			}
		})
	}
}

// fakeSM is one secret's staging labels and tags.
type fakeSM struct {
	mu         sync.Mutex
	stages     map[string][]string
	tags       map[string]string
	describes  int
	onDescribe func(n int, f *fakeSM) // runs under the lock after each describe
}

func (f *fakeSM) DescribeSecret(_ context.Context, _ *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	out := &secretsmanager.DescribeSecretOutput{VersionIdsToStages: map[string][]string{}}
	for k, v := range f.stages {
		out.VersionIdsToStages[k] = v
	}
	for k, v := range f.tags {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if f.onDescribe != nil {
		f.onDescribe(f.describes, f)
	}
	return out, nil
}

func (f *fakeSM) TagResource(_ context.Context, in *secretsmanager.TagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range in.Tags {
		f.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &secretsmanager.TagResourceOutput{}, nil
}

func TestRequestWritesTheTagsOrRefuses(t *testing.T) {
	t.Parallel()
	sm := &fakeSM{stages: map[string][]string{"v1": {"AWSCURRENT"}}, tags: map[string]string{"team": "payments"}}
	clk := fakeclock.New(now)
	snap, req, err := Request(context.Background(), sm, clk, "lwa/main", "ann@bastion", "")
	if err != nil {
		t.Fatal(err)
	}
	if snap.CurrentVersionID != "v1" || !req.At.Equal(now) {
		t.Fatalf("snapshot %+v request %+v", snap, req)
	}
	if sm.tags[vault.TagRequestAt] != "2026-06-01T12:00:00Z" || sm.tags[vault.TagRequestBy] != "ann@bastion" || sm.tags["team"] != "payments" {
		t.Fatalf("tags after the request: %v", sm.tags)
	}
	if _, ok := sm.tags[vault.TagRequestReason]; ok {
		t.Fatal("an empty reason was written")
	}
	// A second request while the first waits is refused and writes nothing.
	clk.Advance(time.Second)
	if _, _, err := Request(context.Background(), sm, clk, "lwa/main", "bob@elsewhere", ""); !errors.Is(err, ErrRefused) {
		t.Fatalf("second request = %v, want ErrRefused", err)
	}
	if sm.tags[vault.TagRequestBy] != "ann@bastion" {
		t.Fatal("a refused request overwrote the pending one")
	}
}

func TestWaitFollowsThePhasesToPromotion(t *testing.T) {
	t.Parallel()
	at := "2026-06-01T12:00:00Z"
	sm := &fakeSM{stages: map[string][]string{"v1": {"AWSCURRENT"}}, tags: map[string]string{vault.TagRequestAt: at}}
	// The daemon's side, one step per describe.
	sm.onDescribe = func(n int, f *fakeSM) {
		switch n {
		case 2:
			f.tags = map[string]string{vault.TagRequestedAt: at, vault.TagLastCallAt: at}
		case 3:
			f.stages["v2"] = []string{"AWSPENDING"}
		case 4:
			f.stages = map[string][]string{"v1": {"AWSPREVIOUS"}, "v2": {"AWSCURRENT"}}
			f.tags = map[string]string{}
		}
	}
	clk := fakeclock.New(now)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Advance the fake clock whenever Wait sleeps.
	go func() {
		for i := 1; ctx.Err() == nil; i++ {
			if clk.WaitCreated(ctx, i) != nil {
				return
			}
			clk.Advance(time.Second)
		}
	}()
	var phases []Phase
	id, err := Wait(ctx, sm, clk, "lwa/main", "v1", time.Second, func(p Phase, _ Snapshot) { phases = append(phases, p) })
	if err != nil {
		t.Fatal(err)
	}
	if id != "v2" {
		t.Fatalf("Wait = %q, want v2", id)
	}
	want := []Phase{PhaseRequested, PhaseInFlight, PhaseStaged, PhasePromoted}
	if strings.Join(phaseStrings(phases), ",") != strings.Join(phaseStrings(want), ",") {
		t.Fatalf("phases %v, want %v", phases, want)
	}
}

func phaseStrings(ps []Phase) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}
