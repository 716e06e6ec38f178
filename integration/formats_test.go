package integration

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestDriftedAndWrappedNotificationsRotate: a new secret whose payloadVersion is "1.0", one with
// unknown future versions, and one inside an SNS envelope are each processed end to end (staged,
// verified, promoted, deleted), and the counters say which shape they came in.
func TestDriftedAndWrappedNotificationsRotate(t *testing.T) {
	t.Parallel()
	versions := func(notif, payload string) func(string) string {
		return func(body string) string {
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				return body
			}
			m["notificationVersion"], m["payloadVersion"] = notif, payload
			b, _ := json.Marshal(m)
			return string(b)
		}
	}
	sns := func(body string) string {
		b, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "00000000-0000-4000-8000-000000000001",
			"TopicArn": "arn:aws:sns:us-east-1:123456789012:sp-api", "Message": body, "Timestamp": time.Now().UTC().Format(time.RFC3339)})
		return string(b)
	}
	const typ = `type="APPLICATION_OAUTH_CLIENT_NEW_SECRET"`
	for _, tc := range []struct {
		name            string
		reshape         func(string) string
		unknown, viaSNS float64
	}{
		{"payload version 1.0", versions("1.0", "1.0"), 1, 0},
		{"unknown future versions", versions("2.0", "2031-01-01"), 1, 0},
		{"SNS envelope", sns, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, Reshape: tc.reshape})
			d := startDaemon(t, env)
			d.signal(t, syscall.SIGUSR1)
			assertRotated(t, env, env.FirstSecret)
			eventually(t, 10*time.Second, "the counters", func() bool {
				processed, _ := d.scrape(t, `lwa_rotator_notifications_total{application="demo-app",outcome="processed",`+typ+`}`)
				unknown, _ := d.scrape(t, `lwa_rotator_notifications_unknown_version_total{`+typ+`}`)
				viaSNS, _ := d.scrape(t, `lwa_rotator_notifications_sns_envelope_total{`+typ+`}`)
				return processed == 1 && unknown == tc.unknown && viaSNS == tc.viaSNS
			})
			if strings.Contains(d.output(), `"level":"error"`) {
				t.Errorf("an error was logged for a notification that should be accepted:\n%s", d.output())
			}
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, d.output(), env.FirstSecret, newest)
		})
	}
}
