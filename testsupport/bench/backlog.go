package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
)

// backlogMix is what every ten backlog messages hold: four expiry notices that change nothing
// (their expiry is the stored one), one expiry notice delivered twice (a duplicate), three stale
// replays (a new-secret notification of the secret already current) and one genuine new secret
// (the simulator rotated the application; its notification waits on the queue).
type backlogMix struct{ expiry, dup, stale, fresh int }

func (m backlogMix) total() int { return m.expiry + m.dup + m.stale + m.fresh }

// backlog queues Backlog messages across the largest world's applications before each kind
// starts, and measures exec → both queues empty, the requests per message (less the median
// start-up requests of that kind and size) and RSS after draining against idle RSS.
func (r *runner) backlog(ctx context.Context) error {
	if r.o.Backlog <= 0 {
		return nil
	}
	n := r.o.Apps[len(r.o.Apps)-1]
	w := r.worlds[n]
	drain, perMsg, rssAfter, rssIdle, rssPeak := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	var mix backlogMix
	for _, kind := range r.kinds() {
		if err := w.abandonedPollsGone(ctx); err != nil {
			return err
		}
		var err error
		if mix, err = r.queueBacklog(ctx, w, r.o.Backlog); err != nil {
			return err
		}
		r.say("%s: backlog of %d messages queued across %d applications (%+v)", kind, mix.total(), n, mix)
		before := w.counts(kind)
		p, err := w.start(kind, false)
		if err != nil {
			return err
		}
		var peak float64
		done, err := waitFor(ctx, 8*time.Minute, func() bool {
			if v, err := p.RSS(); err == nil && v > peak {
				peak = v
			}
			a, err1 := w.env.QueueDepth(ctx, w.env.ExpiryQueue)
			b, err2 := w.env.QueueDepth(ctx, w.env.SecretQueue)
			return err1 == nil && err2 == nil && a+b == 0
		})
		if err != nil {
			p.Stop()
			return fmt.Errorf("%s did not drain the backlog: %w", kind, err)
		}
		drain[kind] = done.Sub(p.Start).Seconds()
		if err := w.waitQuiet(ctx, kind, r.o.Quiet, 2*time.Minute); err != nil {
			p.Stop()
			return err
		}
		_, total := diff(before, w.counts(kind), false)
		perMsg[kind] = (float64(total) - r.startReq[pkey(kind, n)]) / float64(mix.total())
		if rssAfter[kind], err = p.RSS(); err != nil {
			p.Stop()
			return err
		}
		rssIdle[kind] = r.idleRSS[pkey(kind, n)]
		rssPeak[kind] = peak
		r.say("%s: drained in %.1f s, %.2f requests per message, RSS %.1f MiB (idle %.1f)", kind, drain[kind], perMsg[kind], rssAfter[kind], rssIdle[kind])
		w.stop(p)
	}
	note := fmt.Sprintf("%d messages across %d applications: %d expiry notices, %d duplicate copies, %d stale replays, %d genuine new secrets",
		mix.total(), n, mix.expiry, mix.dup, mix.stale, mix.fresh)
	r.pair("backlog_drain_s", "backlog: exec → both queues empty", "s", n, drain, note)
	r.pair("backlog_requests_per_message", "backlog: requests per message (less the median start-up requests)", "requests", n, perMsg, note)
	r.pair("backlog_rss_idle_mib", "backlog: idle RSS of the same world (before)", "MiB", n, rssIdle, "")
	r.pair("backlog_rss_peak_mib", "backlog: peak RSS while draining (sampled with the queue depth)", "MiB", n, rssPeak, "")
	r.pair("backlog_rss_after_mib", "backlog: RSS after draining", "MiB", n, rssAfter, "")
	return nil
}

// queueBacklog puts about count messages on the world's queues, straight to moto.
func (r *runner) queueBacklog(ctx context.Context, w *world, count int) (backlogMix, error) {
	type msg struct{ queue, body string }
	var msgs []msg
	var mix backlogMix
	apps := w.env.Applications
	meta := func(appID string) amazon.Meta {
		return amazon.Meta{ApplicationID: appID, SubscriptionID: randID(), NotificationID: randID(), Time: time.Now()}
	}
	var rotate []int
	for i := 0; mix.total() < count; i++ {
		a := apps[i%len(apps)]
		cur, exp, ok := w.env.Sim.Newest(a.ClientID)
		if !ok {
			return mix, fmt.Errorf("the simulator does not know %s", a.Name)
		}
		switch slot := i % 10; {
		case slot < 4:
			msgs = append(msgs, msg{w.env.ExpiryQueue, string(amazon.ExpiryBody(meta(a.AppID), a.ClientID, exp))})
			mix.expiry++
		case slot == 4:
			b := string(amazon.ExpiryBody(meta(a.AppID), a.ClientID, exp))
			msgs = append(msgs, msg{w.env.ExpiryQueue, b}, msg{w.env.ExpiryQueue, b})
			mix.dup += 2
		case slot < 9 || len(rotate) >= len(apps):
			msgs = append(msgs, msg{w.env.SecretQueue, string(amazon.NewSecretBody(meta(a.AppID), a.ClientID, cur, exp, exp))})
			mix.stale++
		default:
			rotate = append(rotate, (i/10)%len(apps))
			mix.fresh++
		}
	}
	byQueue := map[string][]string{}
	for _, m := range msgs {
		byQueue[m.queue] = append(byQueue[m.queue], m.body)
	}
	for queue, bodies := range byQueue {
		if err := sendBodies(ctx, w, queue, bodies); err != nil {
			return mix, err
		}
	}
	// Genuine new secrets: the simulator rotates the application itself and delivers the
	// notification, as Amazon would after someone's rotate call.
	lwa := &spapi.LWAClient{Endpoint: w.env.SimURL + "/auth/o2/token"}
	app := &spapi.AppClient{Endpoints: map[spapi.Region]string{"na": w.env.SimURL}}
	for _, i := range rotate {
		a := apps[i]
		cur, _, _ := w.env.Sim.Newest(a.ClientID)
		tok, err := lwa.Token(ctx, a.ClientID, cur)
		if err != nil {
			return mix, fmt.Errorf("minting a token to rotate %s: %w", a.Name, err)
		}
		if _, err := app.RotateClientSecret(ctx, a.ClientID, "na", tok.AccessToken); err != nil {
			return mix, fmt.Errorf("rotating %s for the backlog: %w", a.Name, err)
		}
	}
	return mix, nil
}

func randID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sendBodies puts bodies on queue straight to moto, ten a call.
func sendBodies(ctx context.Context, w *world, queue string, bodies []string) error {
	for i := 0; i < len(bodies); i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := i; j < i+10 && j < len(bodies); j++ {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(bodies[j])})
		}
		out, err := w.env.AWS.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries})
		if err != nil {
			return fmt.Errorf("queueing messages: %w", err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("queueing messages: %d refused", len(out.Failed))
		}
	}
	return nil
}

// perMessage measures, on a running client, the requests one message of each no-op kind costs
// (polling left out): expiry notices that change nothing, notices delivered twice, and stale
// replays of the current secret. Each kind is k messages for distinct applications where the
// world has them.
func (r *runner) perMessage(ctx context.Context, w *world, p *Proc, k int) (map[string]float64, error) {
	apps := w.env.Applications
	meta := func(appID string) amazon.Meta {
		return amazon.Meta{ApplicationID: appID, SubscriptionID: randID(), NotificationID: randID(), Time: time.Now()}
	}
	out := map[string]float64{}
	for _, kind := range []string{"expiry", "duplicate", "stale"} {
		var bodies []string
		queue := w.env.ExpiryQueue
		for i := range k {
			a := apps[(i+1)%len(apps)] // app 0 has just rotated; the others have not
			cur, exp, _ := w.env.Sim.Newest(a.ClientID)
			switch kind {
			case "expiry":
				bodies = append(bodies, string(amazon.ExpiryBody(meta(a.AppID), a.ClientID, exp)))
			case "duplicate":
				b := string(amazon.ExpiryBody(meta(a.AppID), a.ClientID, exp))
				bodies = append(bodies, b, b)
			case "stale":
				queue = w.env.SecretQueue
				bodies = append(bodies, string(amazon.NewSecretBody(meta(a.AppID), a.ClientID, cur, exp, exp)))
			}
		}
		before := w.counts(p.Kind)
		if err := sendBodies(ctx, w, queue, bodies); err != nil {
			return nil, err
		}
		if _, err := waitFor(ctx, 2*time.Minute, func() bool {
			n, err := w.env.QueueDepth(ctx, queue)
			return err == nil && n == 0
		}); err != nil {
			return nil, fmt.Errorf("%s did not take the %s messages: %w", p.Kind, kind, err)
		}
		if err := w.waitQuiet(ctx, p.Kind, r.o.Quiet, 2*time.Minute); err != nil {
			return nil, err
		}
		_, total := diff(before, w.counts(p.Kind), true)
		out[kind] = float64(total) / float64(len(bodies))
	}
	return out, nil
}
