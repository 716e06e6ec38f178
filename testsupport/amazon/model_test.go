package amazon_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const (
	day      = 24 * time.Hour
	clientID = "amzn1.application-oa2-client.test"
	queueNew = "https://sqs.example/new"
	queueExp = "https://sqs.example/expiry"
)

var (
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first = secret.New("amzn1.oa2-cs.v1.first")
)

func seeded(seed uint64) amazon.IDs {
	var key [32]byte
	key[0] = byte(seed)
	return amazon.IDsFrom(rand.NewChaCha8(key))
}

// enrolled is a model holding one enrolled application whose secret expires in 100 days.
func enrolled(t *testing.T) *amazon.Model {
	t.Helper()
	m := amazon.New(amazon.Rules{}, seeded(1))
	if err := m.Register(t0, amazon.Application{ClientID: clientID, Secret: first, SecretExpiresAt: t0.Add(100 * day),
		ExpiryQueueURL: queueExp, NewSecretQueueURL: queueNew}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return m
}

func token(t *testing.T, m *amazon.Model, now time.Time, sec secret.Value) string {
	t.Helper()
	tok, err := m.Token(now, clientID, sec)
	if err != nil {
		t.Fatalf("Token at %v: %v", now, err)
	}
	return tok.Value
}

func TestRulesDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want amazon.Rules
	}{
		{amazon.Rules{}, amazon.Rules{NewSecretLifetime: spapi.SecretLifetime, OldSecretLifetime: 7 * day, RotateInterval: time.Minute, TokenLifetime: time.Hour}},
		{amazon.Rules{NewSecretLifetime: day, OldSecretLifetime: -1, RotateInterval: time.Second, TokenLifetime: 5 * time.Minute},
			amazon.Rules{NewSecretLifetime: day, OldSecretLifetime: 7 * day, RotateInterval: time.Second, TokenLifetime: 5 * time.Minute}},
	}
	for _, tc := range tests {
		if got := amazon.New(tc.in, nil).Rules(); got != tc.want {
			t.Errorf("Rules(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	now := t0.Add(123456789 * time.Nanosecond)
	tests := []struct {
		name       string
		app        amazon.Application
		twice      bool
		wantErr    error
		wantExpiry time.Time
		enrolled   bool
	}{
		{"defaults", amazon.Application{ClientID: clientID, Secret: first, NewSecretQueueURL: queueNew}, false, nil,
			now.Add(spapi.SecretLifetime).Truncate(time.Millisecond), true},
		{"given expiry kept at millisecond precision", amazon.Application{ClientID: clientID, Secret: first, SecretExpiresAt: now.Add(day)}, false, nil,
			now.Add(day).Truncate(time.Millisecond), false},
		{"no client id", amazon.Application{Secret: first}, false, amazon.ErrInvalidRegistration, time.Time{}, false},
		{"no secret", amazon.Application{ClientID: clientID}, false, amazon.ErrInvalidRegistration, time.Time{}, false},
		{"twice", amazon.Application{ClientID: clientID, Secret: first}, true, amazon.ErrInvalidRegistration, time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := amazon.New(amazon.Rules{}, seeded(2))
			err := m.Register(now, tc.app)
			if tc.twice {
				err = m.Register(now, tc.app)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Register: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), first.Reveal()) {
					t.Errorf("error %q shows the secret", err)
				}
				return
			}
			st, ok := m.State(clientID)
			if !ok || len(st.Secrets) != 1 || !st.Secrets[0].Value.Equal(first) || !st.Secrets[0].ExpiresAt.Equal(tc.wantExpiry) {
				t.Fatalf("State = %+v, %v; want the one secret expiring %v", st, ok, tc.wantExpiry)
			}
			if !strings.HasPrefix(st.ApplicationID, "amzn1.sp.solution.") || st.ExpirySubscriptionID == "" || st.NewSecretSubscriptionID == "" {
				t.Errorf("made-up ids: application %q, subscriptions %q %q", st.ApplicationID, st.ExpirySubscriptionID, st.NewSecretSubscriptionID)
			}
			if st.Enrolled() != tc.enrolled {
				t.Errorf("Enrolled = %v, want %v", st.Enrolled(), tc.enrolled)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clientID string
		sec      secret.Value
		at       time.Time
		wantErr  error
	}{
		{"current secret", clientID, first, t0, nil},
		{"a millisecond before expiry", clientID, first, t0.Add(100*day - time.Millisecond), nil},
		{"at expiry", clientID, first, t0.Add(100 * day), amazon.ErrInvalidClient},
		{"wrong secret", clientID, secret.New("amzn1.oa2-cs.v1.wrong"), t0, amazon.ErrInvalidClient},
		{"unknown client", "amzn1.application-oa2-client.nobody", first, t0, amazon.ErrInvalidClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := enrolled(t)
			tok, err := m.Token(tc.at, tc.clientID, tc.sec)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Token: %v, want %v", err, tc.wantErr)
			}
			if got := m.Valid(tc.at, tc.clientID, tc.sec); got != (tc.wantErr == nil) {
				t.Errorf("Valid = %v, want %v", got, tc.wantErr == nil)
			}
			c, _ := m.Secret(clientID, 0)
			if err != nil {
				if !c.LastAccepted.IsZero() {
					t.Errorf("a refused token request marked the secret accepted at %v", c.LastAccepted)
				}
				return
			}
			if !strings.HasPrefix(tok.Value, "Atc|") || tok.ClientID != clientID || !tok.ExpiresAt.Equal(tc.at.Add(time.Hour)) {
				t.Errorf("token = %+v, want Atc|… for %s expiring an hour after %v", tok, clientID, tc.at)
			}
			if owner, ok := m.TokenOwner(tok.Value); !ok || owner != clientID {
				t.Errorf("TokenOwner = %q, %v", owner, ok)
			}
			if !c.LastAccepted.Equal(tc.at) {
				t.Errorf("LastAccepted = %v, want %v", c.LastAccepted, tc.at)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns the token to rotate with and when to call
		setup       func(t *testing.T, m *amazon.Model) (string, time.Time)
		notEnrolled bool // the application has no new-secret queue
		wantErr     error
		wantOld     time.Time // the first secret's expiry afterwards
		wantCalls   int       // accepted rotate calls afterwards
	}{
		{"accepted: the old secret keeps 7 days", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			return token(t, m, t0, first), t0.Add(time.Second)
		}, false, nil, t0.Add(time.Second + 7*day), 1},
		{"accepted: an old secret with less than 7 days keeps its own", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			at := t0.Add(97 * day)
			return token(t, m, at, first), at
		}, false, nil, t0.Add(100 * day), 1},
		{"unknown token", func(*testing.T, *amazon.Model) (string, time.Time) { return "Atc|forged", t0 }, false, amazon.ErrUnknownToken, t0.Add(100 * day), 0},
		{"expired token", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			return token(t, m, t0, first), t0.Add(time.Hour)
		}, false, amazon.ErrTokenExpired, t0.Add(100 * day), 0},
		{"within a minute of the last accepted call", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			tok := token(t, m, t0, first)
			if _, err := m.Rotate(t0, tok); err != nil {
				t.Fatalf("first Rotate: %v", err)
			}
			return tok, t0.Add(time.Minute - time.Millisecond)
		}, false, amazon.ErrThrottled, t0.Add(7 * day), 1},
		{"a minute after the last accepted call", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			tok := token(t, m, t0, first)
			if _, err := m.Rotate(t0, tok); err != nil {
				t.Fatalf("first Rotate: %v", err)
			}
			return tok, t0.Add(time.Minute)
		}, false, nil, t0.Add(7 * day), 2},
		{"not enrolled", func(t *testing.T, m *amazon.Model) (string, time.Time) {
			return token(t, m, t0, first), t0
		}, true, amazon.ErrNotEnrolled, t0.Add(100 * day), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := enrolled(t)
			if tc.notEnrolled {
				m = amazon.New(amazon.Rules{}, seeded(3))
				if err := m.Register(t0, amazon.Application{ClientID: clientID, Secret: first, SecretExpiresAt: t0.Add(100 * day), ExpiryQueueURL: queueExp}); err != nil {
					t.Fatal(err)
				}
			}
			tok, at := tc.setup(t, m)
			before := m.Secrets(clientID)
			r, err := m.Rotate(at, tok)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Rotate: %v, want %v", err, tc.wantErr)
			}
			if c, _ := m.Secret(clientID, 0); !c.ExpiresAt.Equal(tc.wantOld) {
				t.Errorf("first secret expires %v, want %v", c.ExpiresAt, tc.wantOld)
			}
			if st, _ := m.State(clientID); st.RotateCalls != tc.wantCalls {
				t.Errorf("RotateCalls = %d, want %d", st.RotateCalls, tc.wantCalls)
			}
			if err != nil {
				if m.Secrets(clientID) != before {
					t.Errorf("a refused rotate minted a secret")
				}
				return
			}
			newest, _ := m.Newest(clientID)
			if r.Seq != before || !newest.Value.Equal(r.Secret.Value) || !r.Secret.ExpiresAt.Equal(at.Add(spapi.SecretLifetime)) {
				t.Errorf("rotation %+v, newest %+v: want mint #%d expiring %v", r, newest, before, at.Add(spapi.SecretLifetime))
			}
			if old, _ := m.Secret(clientID, r.Seq-1); !r.OldExpiresAt.Equal(old.ExpiresAt) {
				t.Errorf("OldExpiresAt = %v, the replaced secret expires %v", r.OldExpiresAt, old.ExpiresAt)
			}
			if !m.Valid(at, clientID, r.Secret.Value) || !m.Valid(at, clientID, first) {
				t.Errorf("right after a rotate both the new and the old secret must work")
			}
			if r.Notice.Type != amazon.TypeNewSecret || r.Notice.QueueURL != queueNew || r.Notice.ClientID != clientID {
				t.Errorf("notice = %s to %s for %s", r.Notice.Type, r.Notice.QueueURL, r.Notice.ClientID)
			}
			n, err := notifications.Parse(r.Notice.Body)
			ns, ok := n.(*notifications.NewSecret)
			if err != nil || !ok || !ns.Secret.Equal(r.Secret.Value) || !ns.ExpiresAt.Equal(r.Secret.ExpiresAt) ||
				!ns.OldExpiresAt.Equal(r.OldExpiresAt) || ns.Metadata.NotificationID != r.Notice.NotificationID {
				t.Errorf("the notice body parses to %+v, %v", n, err)
			}
		})
	}
}

func TestExpiryNotice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		app       amazon.Application
		expiresAt time.Time
		wantQueue string
		wantExp   time.Time
		wantErr   error
	}{
		{"to the expiry queue", amazon.Application{ExpiryQueueURL: queueExp, NewSecretQueueURL: queueNew}, t0.Add(30 * day), queueExp, t0.Add(30 * day), nil},
		{"zero announces the newest", amazon.Application{ExpiryQueueURL: queueExp}, time.Time{}, queueExp, t0.Add(100 * day), nil},
		{"falls back to the new-secret queue", amazon.Application{NewSecretQueueURL: queueNew}, t0.Add(day), queueNew, t0.Add(day), nil},
		{"no queue", amazon.Application{}, t0, "", time.Time{}, amazon.ErrNoQueue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := amazon.New(amazon.Rules{}, seeded(4))
			tc.app.ClientID, tc.app.Secret, tc.app.SecretExpiresAt = clientID, first, t0.Add(100*day)
			if err := m.Register(t0, tc.app); err != nil {
				t.Fatal(err)
			}
			n, err := m.ExpiryNotice(t0.Add(time.Hour), clientID, tc.expiresAt)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ExpiryNotice: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			p, err := notifications.Parse(n.Body)
			e, ok := p.(*notifications.ExpiryNotice)
			if err != nil || !ok || n.QueueURL != tc.wantQueue || !e.ExpiresAt.Equal(tc.wantExp) || e.ClientID != clientID ||
				e.Reason != amazon.ExpiryReason || e.Metadata.NotificationID != n.NotificationID || !e.EventTime.Equal(t0.Add(time.Hour)) {
				t.Errorf("notice to %s parses to %+v, %v; want %v to %s", n.QueueURL, p, err, tc.wantExp, tc.wantQueue)
			}
		})
	}
	if _, err := amazon.New(amazon.Rules{}, nil).ExpiryNotice(t0, clientID, t0); !errors.Is(err, amazon.ErrUnknownApplication) {
		t.Errorf("ExpiryNotice for an unknown application: %v", err)
	}
}

// TestBodiesMatchAmazonsSamples rebuilds the documented samples from their own fields: what
// notifications.Parse reads from the model's bodies must be what it reads from Amazon's.
func TestBodiesMatchAmazonsSamples(t *testing.T) {
	t.Parallel()
	if amazon.TypeExpiry != notifications.TypeExpiry || amazon.TypeNewSecret != notifications.TypeNewSecret {
		t.Fatalf("notification types differ from package notifications")
	}
	tests := []struct {
		file  string
		build func(n notifications.Notification) []byte
	}{
		{"expiry.json", func(n notifications.Notification) []byte {
			e := n.(*notifications.ExpiryNotice)
			return amazon.ExpiryBody(meta(e.Envelope), e.ClientID, e.ExpiresAt)
		}},
		{"new_secret.json", func(n notifications.Notification) []byte {
			s := n.(*notifications.NewSecret)
			return amazon.NewSecretBody(meta(s.Envelope), s.ClientID, s.Secret, s.ExpiresAt, s.OldExpiresAt)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			sample, err := os.ReadFile("../../notifications/testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := notifications.Parse(sample)
			if err != nil {
				t.Fatalf("parsing the sample: %v", err)
			}
			got, err := notifications.Parse(tc.build(want))
			if err != nil {
				t.Fatalf("parsing the model's body: %v", err)
			}
			// The samples' eventTime and publishTime differ; the model sends one instant for both.
			wantEnv := want.Meta()
			wantEnv.EventTime = wantEnv.Metadata.PublishTime
			if !reflect.DeepEqual(got.Meta(), wantEnv) || !sameFields(got, want) {
				t.Errorf("model body parses to %+v, sample to %+v", got, want)
			}
		})
	}
}

func meta(e notifications.Envelope) amazon.Meta {
	return amazon.Meta{ApplicationID: e.Metadata.ApplicationID, SubscriptionID: e.Metadata.SubscriptionID,
		NotificationID: e.Metadata.NotificationID, Time: e.Metadata.PublishTime}
}

func sameFields(a, b notifications.Notification) bool {
	switch x := a.(type) {
	case *notifications.ExpiryNotice:
		y := b.(*notifications.ExpiryNotice)
		return x.ClientID == y.ClientID && x.ExpiresAt.Equal(y.ExpiresAt) && x.Reason == y.Reason
	case *notifications.NewSecret:
		y := b.(*notifications.NewSecret)
		return x.ClientID == y.ClientID && x.Secret.Equal(y.Secret) && x.ExpiresAt.Equal(y.ExpiresAt) && x.OldExpiresAt.Equal(y.OldExpiresAt)
	}
	return false
}

// TestSeededAndCloned: the same seed and calls give the same secrets and bodies, and a clone
// moves on without its original.
func TestSeededAndCloned(t *testing.T) {
	t.Parallel()
	run := func(m *amazon.Model) amazon.Rotation {
		r, err := m.Rotate(t0, token(t, m, t0, first))
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		return r
	}
	a, b := enrolled(t), enrolled(t)
	ra, rb := run(a), run(b)
	if !ra.Secret.Value.Equal(rb.Secret.Value) || string(ra.Notice.Body) != string(rb.Notice.Body) {
		t.Errorf("two models on one seed minted different secrets or bodies")
	}
	c := a.Clone()
	if _, err := c.Rotate(t0.Add(time.Minute), token(t, c, t0.Add(time.Minute), ra.Secret.Value)); err != nil {
		t.Fatalf("Rotate on the clone: %v", err)
	}
	if a.Secrets(clientID) != 2 || c.Secrets(clientID) != 3 {
		t.Errorf("after rotating the clone: original has %d secrets, clone %d; want 2 and 3", a.Secrets(clientID), c.Secrets(clientID))
	}
	if old, _ := a.Secret(clientID, 1); !old.ExpiresAt.Equal(ra.Secret.ExpiresAt) {
		t.Errorf("rotating the clone shortened the original's secret to %v", old.ExpiresAt)
	}
}
