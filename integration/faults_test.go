package integration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

func send(t *testing.T, env *sandbox.Env, queue, body string) {
	t.Helper()
	if _, err := env.AWS.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(body)}); err != nil {
		t.Fatalf("sending a message: %v", err)
	}
}

func newSecretBody(clientID, appID, notificationID string, s secret.Value, expires, oldExpires time.Time) string {
	return fmt.Sprintf(`{"notificationVersion":"1.0","notificationType":"APPLICATION_OAUTH_CLIENT_NEW_SECRET","payloadVersion":"2023-11-30",
"eventTime":"2026-01-10T22:09:17.456Z","payload":{"applicationOAuthClientNewSecret":{"clientId":%q,"newClientSecret":%q,
"newClientSecretExpiryTime":%q,"oldClientSecretExpiryTime":%q}},"notificationMetadata":{"applicationId":%q,
"subscriptionId":"8594dc0e","publishTime":"2026-01-10T22:09:18.706Z","notificationId":%q}}`,
		clientID, s.Reveal(), expires.UTC().Format(time.RFC3339Nano), oldExpires.UTC().Format(time.RFC3339Nano), appID, notificationID)
}

// TestRefusedMessagesEndInTheDLQAndChangeNothing: malformed, unknown types, unknown client ids,
// another application's secret and planted secrets are never deleted by the daemon and never
// touch the vault; the queue's redrive policy moves them to the dead-letter queue.
func TestRefusedMessagesEndInTheDLQAndChangeNothing(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, RejectedRetry: time.Second, MaxReceiveCount: 2,
		DeadLetterInterval: time.Second})
	d := startDaemon(t, env)
	planted := secret.New("amzn1.oa2-cs.v1.planted0000000000000000000000000000")
	far := time.Now().Add(200 * 24 * time.Hour)
	bodies := map[string]string{
		"malformed":             `{"notificationVersion":"1.0","notificationType":`,
		"unknown type":          `{"notificationVersion":"1.0","notificationType":"ANY_OFFER_CHANGED","payloadVersion":"1.0"}`,
		"unknown client":        newSecretBody("amzn1.application-oa2-client.stranger", env.AppID, "n-stranger", planted, far, far),
		"other application":     newSecretBody(env.ClientID, "amzn1.sp.solution.other", "n-other", planted, far, far),
		"planted (LWA says no)": newSecretBody(env.ClientID, env.AppID, "n-planted", planted, far, far),
	}
	for _, b := range bodies {
		send(t, env, env.SecretQueue, b)
	}
	dlq := env.DLQs[len(env.DLQs)-1]
	eventually(t, 60*time.Second, "all refused messages in the dead-letter queue", func() bool {
		n, err := env.QueueDepth(context.Background(), dlq)
		return err == nil && n == len(bodies)
	})
	eventually(t, 30*time.Second, "the dead-letter gauge to show them", func() bool {
		v, _ := d.scrape(t, `lwa_rotator_dead_letter_messages{queue="new_secret"}`)
		return v == float64(len(bodies))
	})
	cur, err := env.Store.Current(context.Background(), env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Record.ClientSecret.Equal(env.FirstSecret) {
		t.Fatal("a refused message changed AWSCURRENT")
	}
	if _, pending, _ := env.Store.Pending(context.Background(), env.SecretID); pending {
		t.Fatal("a refused message left AWSPENDING behind")
	}
	for series, atLeast := range map[string]float64{
		`lwa_rotator_notifications_total{application="",outcome="malformed",type="unknown"}`:                                    2,
		`lwa_rotator_notifications_total{application="",outcome="unknown_client",type="APPLICATION_OAUTH_CLIENT_NEW_SECRET"}`:   1,
		`lwa_rotator_notifications_total{application="demo-app",outcome="rejected",type="APPLICATION_OAUTH_CLIENT_NEW_SECRET"}`: 2,
		`lwa_rotator_rotations_total{application="demo-app",result="rejected"}`:                                                 1,
	} {
		if v, _ := d.scrape(t, series); v < atLeast {
			t.Errorf("%s = %v, want at least %v", series, v, atLeast)
		}
	}
	assertNoSecret(t, d.output(), env.FirstSecret, planted)
}

// TestWatchdogRetriesWhenTheNewSecretIsLost: Amazon accepts the rotate call but the new-secret
// message never arrives. The await deadline fires, the daemon says so, and a second rotation,
// made while the old secret still works, completes.
func TestWatchdogRetriesWhenTheNewSecretIsLost(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{AwaitDeadline: 5 * time.Second, RetryMin: time.Second, RotateInterval: time.Second})
	env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Count: 1, Drop: true})
	d := startDaemon(t, env)
	d.signal(t, syscall.SIGUSR1)
	eventually(t, 30*time.Second, "the await deadline passed", func() bool {
		v, _ := d.scrape(t, `lwa_rotator_rotations_total{application="demo-app",result="timeout"}`)
		return v >= 1
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.output())
		}
	})
	assertRotated(t, env, env.FirstSecret)
	if n := env.Sim.RotateCalls(env.ClientID); n != 2 {
		t.Errorf("rotate calls = %d, want 2 (the lost one and the retry)", n)
	}
	if v, _ := d.scrape(t, `lwa_rotator_rotations_total{application="demo-app",result="timeout"}`); v != 1 {
		t.Errorf("timeout counter = %v, want 1", v)
	}
}

// TestTwoReplicas: two daemons on the same queues and secret by mistake. One expiry event still
// produces one rotation, and the end state is the same as with one.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{VisibilityTimeout: 5 * time.Second})
	a := startDaemon(t, env)
	b := startDaemon(t, env)
	for range 3 { // duplicates too: Amazon delivers at least once
		if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	assertRotated(t, env, env.FirstSecret)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint accepted %d calls from two replicas, want 1", n)
	}
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, a.output()+"\n"+b.output(), env.FirstSecret, newest)
}
