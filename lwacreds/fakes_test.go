package lwacreds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const clientID = "amzn1.application-oa2-client.consumer"

// fakeSM is Secrets Manager's GetSecretValue by staging label, as AWS documents it: a label
// that is on no version is ResourceNotFoundException. Writes go through promote, which moves
// labels the way PutSecretValue with the default stage does (AWSCURRENT to the new version,
// AWSPREVIOUS to the one that had AWSCURRENT).
type fakeSM struct {
	mu       sync.Mutex
	versions map[string]string   // version id → stored string
	stages   map[string]string   // label → version id
	reads    map[string]int      // label → GetSecretValue calls
	fail     error               // returned by every read while set
	gate     chan struct{}       // when set, every read waits for it to close
	inFlight int                 // reads running now
	maxFl    int                 // most reads ever running at once
	seen     map[string][]string // label → version ids served
}

func newFakeSM() *fakeSM {
	return &fakeSM{versions: map[string]string{}, stages: map[string]string{}, reads: map[string]int{}, seen: map[string][]string{}}
}

func (f *fakeSM) promote(t *testing.T, versionID string, r vault.Record, format vault.Format) {
	t.Helper()
	b, err := vault.Encode(r, format)
	if err != nil {
		t.Fatalf("encoding record: %v", err)
	}
	f.putRaw(versionID, string(b))
}

func (f *fakeSM) putRaw(versionID, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[versionID] = body
	if cur, ok := f.stages[vault.StageCurrent]; ok {
		f.stages[vault.StagePrevious] = cur
	}
	f.stages[vault.StageCurrent] = versionID
}

func (f *fakeSM) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeSM) setGate(g chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = g
}

func (f *fakeSM) readCount(stage string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[stage]
}

func (f *fakeSM) maxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxFl
}

func (f *fakeSM) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, _ ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	f.mu.Lock()
	stage := aws.ToString(in.VersionStage)
	if stage == "" {
		stage = vault.StageCurrent // AWS's documented default
	}
	f.reads[stage]++
	f.inFlight++
	f.maxFl = max(f.maxFl, f.inFlight)
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if f.fail != nil {
		return nil, f.fail
	}
	id, ok := f.stages[stage]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret value for staging label: " + stage)}
	}
	f.seen[stage] = append(f.seen[stage], id)
	return &sm.GetSecretValueOutput{
		Name: in.SecretId, VersionId: aws.String(id), SecretString: aws.String(f.versions[id]),
		VersionStages: []string{stage},
	}, nil
}

// fakeLWA is the LWA token endpoint as an http Doer: it accepts the secrets marked alive for a
// client and answers invalid_client otherwise, with Amazon's error body.
type fakeLWA struct {
	mu       sync.Mutex
	alive    map[string]bool // "clientID\x00secret"
	forms    []url.Values
	gate     chan struct{}
	inFlight int
	maxFl    int
	echo     bool // put the submitted secret in error_description, as a careless server might
	status   int  // when non-zero, answer this status with server_error
	lifetime int  // expires_in; 0 means 3600
	seq      int
}

func newFakeLWA() *fakeLWA { return &fakeLWA{alive: map[string]bool{}} }

func (l *fakeLWA) allow(id string, s secret.Value) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alive[id+"\x00"+s.Reveal()] = true
}

func (l *fakeLWA) revoke(id string, s secret.Value) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.alive, id+"\x00"+s.Reveal())
}

func (l *fakeLWA) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.forms)
}

func (l *fakeLWA) form(i int) url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forms[i]
}

func (l *fakeLWA) Do(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.forms = append(l.forms, form)
	l.inFlight++
	l.maxFl = max(l.maxFl, l.inFlight)
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-req.Context().Done():
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	reply := func(status int, v any) (*http.Response, error) {
		body, _ := json.Marshal(v)
		return &http.Response{
			StatusCode: status, Body: io.NopCloser(bytes.NewReader(body)),
			Header: http.Header{"X-Amzn-Requestid": {fmt.Sprintf("req-%d", len(l.forms))}},
		}, nil
	}
	if l.status != 0 {
		return reply(l.status, map[string]string{"error": "server_error", "error_description": "try later"})
	}
	if !l.alive[form.Get("client_id")+"\x00"+form.Get("client_secret")] {
		desc := "Client authentication failed"
		if l.echo {
			desc += " for secret " + form.Get("client_secret") + " and refresh token " + form.Get("refresh_token")
		}
		return reply(http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": desc})
	}
	l.seq++
	life := l.lifetime
	if life == 0 {
		life = 3600
	}
	return reply(http.StatusOK, map[string]any{
		"access_token": fmt.Sprintf("Atza|token-%d", l.seq), "token_type": "bearer", "expires_in": life,
	})
}

// record makes a stored record for secret s expiring 180 days after t0, with the previous
// secret expiring at prevExp (zero: not recorded).
func record(s string, prevExp time.Time) vault.Record {
	return vault.Record{ClientID: clientID, ClientSecret: secret.New(s), ExpiresAt: t0.Add(180 * 24 * time.Hour), PreviousExpiresAt: prevExp}
}

// assertNoSecret fails when any of the strings holds any of the plaintexts.
func assertNoSecret(t *testing.T, plaintexts []string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, p := range plaintexts {
			if p != "" && strings.Contains(o, p) {
				t.Errorf("output holds a secret: %q", strings.ReplaceAll(o, p, "<THE SECRET>"))
			}
		}
	}
}

// waitFor polls cond with a bound, for states reached by other goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errBoom = errors.New("AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue")
