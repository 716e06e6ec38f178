package rotator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// fakeVault keeps versions and staging labels the way Secrets Manager does, for one secret.
type fakeVault struct {
	mu       sync.Mutex
	versions map[string]vault.Record
	labels   map[string]string // stage → version id
	state    vault.RotationState
	failNext int   // the next n calls fail
	saveErr  error // when set, every SaveState fails with it
	calls    []string
	block    func() // when set, the next call runs it without the lock (once)
}

func newFakeVault(cur vault.Record) *fakeVault {
	return &fakeVault{versions: map[string]vault.Record{"v0": cur}, labels: map[string]string{"AWSCURRENT": "v0"}}
}

func (f *fakeVault) call(name string) error {
	if b := f.block; b != nil {
		f.block = nil
		f.mu.Unlock()
		b()
		f.mu.Lock()
	}
	f.calls = append(f.calls, name)
	if f.failNext > 0 {
		f.failNext--
		return fmt.Errorf("%s: injected vault failure", name)
	}
	return nil
}

func (f *fakeVault) get(stage string) (vault.Version, bool) {
	id, ok := f.labels[stage]
	if !ok {
		return vault.Version{}, false
	}
	return vault.Version{ID: id, Record: f.versions[id]}, true
}

func (f *fakeVault) Current(_ context.Context, _ string) (vault.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Current"); err != nil {
		return vault.Version{}, err
	}
	v, _ := f.get("AWSCURRENT")
	return v, nil
}

func (f *fakeVault) Pending(_ context.Context, _ string) (vault.Version, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Pending"); err != nil {
		return vault.Version{}, false, err
	}
	v, ok := f.get("AWSPENDING")
	if ok && v.ID == f.labels["AWSCURRENT"] {
		return vault.Version{}, false, nil
	}
	return v, ok, nil
}

func (f *fakeVault) Stage(_ context.Context, _ string, token string, r vault.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Stage"); err != nil {
		return err
	}
	if old, ok := f.versions[token]; ok && !sameRecord(old, r) {
		return vault.ErrTokenConflict
	}
	f.versions[token] = r
	f.labels["AWSPENDING"] = token
	return nil
}

func (f *fakeVault) Promote(_ context.Context, _ string, id, from string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Promote"); err != nil {
		return err
	}
	if cur := f.labels["AWSCURRENT"]; cur != id && cur != from {
		return vault.ErrCurrentMoved
	}
	if f.labels["AWSCURRENT"] != id {
		f.labels["AWSPREVIOUS"] = f.labels["AWSCURRENT"]
		f.labels["AWSCURRENT"] = id
	}
	if f.labels["AWSPENDING"] == id {
		delete(f.labels, "AWSPENDING")
	}
	return nil
}

func (f *fakeVault) ClearPending(_ context.Context, _ string, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ClearPending"); err != nil {
		return err
	}
	if f.labels["AWSPENDING"] == id {
		delete(f.labels, "AWSPENDING")
	}
	return nil
}

func (f *fakeVault) LoadState(context.Context, string) (vault.RotationState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.call("LoadState")
}

func (f *fakeVault) SaveState(_ context.Context, _ string, st vault.RotationState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("SaveState"); err != nil {
		return err
	}
	if f.saveErr != nil {
		return f.saveErr
	}
	// Like the real store, SaveState leaves an operator's request tags alone.
	st.Request = f.state.Request
	f.state = st
	return nil
}

func (f *fakeVault) ClearRequest(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ClearRequest"); err != nil {
		return err
	}
	f.state.Request, f.state.ServedRequest = vault.RotationRequest{}, time.Time{}
	return nil
}

// request writes an operator's rotation request, as lwa-rotator rotate does.
func (f *fakeVault) request(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.Request = vault.RotationRequest{At: at, By: "ops@host"}
}

func (f *fakeVault) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeVault) snapshot() (cur, prev vault.Version, pending bool, st vault.RotationState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, _ = f.get("AWSCURRENT")
	prev, _ = f.get("AWSPREVIOUS")
	_, pending = f.labels["AWSPENDING"]
	return cur, prev, pending, f.state
}

func sameRecord(a, b vault.Record) bool {
	return a.ClientID == b.ClientID && a.ClientSecret.Equal(b.ClientSecret) && a.ExpiresAt.Equal(b.ExpiresAt) && a.PreviousExpiresAt.Equal(b.PreviousExpiresAt)
}

// fakeAmazon is LWA plus the rotate endpoint: it knows which secrets are valid.
type fakeAmazon struct {
	mu          sync.Mutex
	valid       []secret.Value
	verified    []secret.Value
	rotateCalls int
	tokenErr    error
	rotateErr   error
	onToken     func() // runs after a successful token, outside the lock
}

func (f *fakeAmazon) Token(_ context.Context, _ string, s secret.Value) (spapi.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenErr != nil {
		return spapi.Token{}, f.tokenErr
	}
	if !slices.ContainsFunc(f.valid, s.Equal) {
		return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", StatusCode: 401, Code: "invalid_client", Kind: spapi.ErrInvalidClient}
	}
	f.verified = append(f.verified, s)
	if hook := f.onToken; hook != nil {
		f.mu.Unlock()
		hook()
		f.mu.Lock()
	}
	return spapi.Token{AccessToken: secret.New("Atc|token"), ExpiresIn: time.Hour}, nil
}

func (f *fakeAmazon) RotateClientSecret(context.Context, string, spapi.Region, secret.Value) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rotateErr != nil {
		return "", f.rotateErr
	}
	f.rotateCalls++
	return fmt.Sprintf("req-%d", f.rotateCalls), nil
}

func (f *fakeAmazon) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rotateCalls
}

type countingObserver struct {
	mu            sync.Mutex
	rotations     map[string]int
	notifications map[string]int
}

func newObserver() *countingObserver {
	return &countingObserver{rotations: map[string]int{}, notifications: map[string]int{}}
}

func (o *countingObserver) Rotation(_, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rotations[result]++
}

func (o *countingObserver) Notification(_, _, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notifications[outcome]++
}

func (o *countingObserver) get(m map[string]int, k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return m[k]
}
