package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

const (
	kindDaemon = "daemon"
	kindNaive  = "naive"
)

// polling are the requests made on a timer whatever happens (long polls, dead-letter depth);
// a rotation's request count leaves them out, as integration/traffic_test.go does.
var polling = map[string]bool{"sqs ReceiveMessage": true, "sqs GetQueueAttributes": true}

// world is one sandbox (moto resources, simulator, configuration) and, per kind of client, the
// pair of proxies that client talks through.
type world struct {
	env     *sandbox.Env
	apps    int
	proxies map[string][2]*Proxy // kind → {aws, sim}
	bins    map[string]string
	logs    io.Writer
	// noWatch is the configuration with requestPollInterval 24h. The request watch reads one
	// secret a second at 100 applications or more (docs/operations.md), so with it requests
	// never stop; every phase but start-up and idle uses this file, as
	// integration/traffic_test.go does.
	noWatch string
	// lastStop is when a client of this world last stopped. A long poll it left at moto still
	// takes the next message (moto, like SQS, does not notice the caller went away), which then
	// stays invisible for the queue's visibility timeout (60 s).
	lastStop time.Time
}

// longPoll is the longest ReceiveMessage wait either client uses, plus a margin.
const longPoll = 21 * time.Second

// stop ends p and remembers when.
func (w *world) stop(p *Proc) {
	p.Stop()
	w.lastStop = time.Now()
}

// abandonedPollsGone makes sure no long poll of a stopped client is still waiting at moto:
// while one may be, it feeds each queue a marker message until one stays visible (every
// abandoned poll has taken one), then purges the queues. Only call it while no client of the
// world runs and the queues hold nothing the benchmark still needs.
func (w *world) abandonedPollsGone(ctx context.Context) error {
	if time.Since(w.lastStop) > longPoll {
		return nil
	}
	for _, q := range uniq(w.env.ExpiryQueue, w.env.SecretQueue) {
		for range 20 {
			if _, err := w.env.AWS.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("lwa-rotator-bench marker")}); err != nil {
				return fmt.Errorf("feeding abandoned polls: %w", err)
			}
			sleep(ctx, 150*time.Millisecond)
			out, err := w.env.AWS.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
				AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
			if err != nil {
				return fmt.Errorf("reading %s: %w", q, err)
			}
			if out.Attributes["ApproximateNumberOfMessages"] != "0" {
				break
			}
		}
		if _, err := w.env.AWS.SQS.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(q)}); err != nil {
			return fmt.Errorf("purging %s: %w", q, err)
		}
	}
	for _, q := range uniq(w.env.ExpiryQueue, w.env.SecretQueue) {
		if n, err := w.env.QueueDepth(ctx, q); err != nil || n != 0 {
			return fmt.Errorf("queue %s still holds %d messages after the purge (%v)", q, n, err)
		}
	}
	w.lastStop = time.Time{}
	return nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

func newWorld(ctx context.Context, motoURL, dir string, apps int, rotateInterval time.Duration, bins map[string]string, logs io.Writer) (*world, error) {
	env, err := sandbox.NewEnv(ctx, sandbox.EnvOptions{
		AWSEndpoint: motoURL, Dir: dir, Apps: apps, Name: fmt.Sprintf("bench%d-%d", apps, time.Now().UnixNano()%1e6),
		// Far outside renewBefore: nothing rotates until the benchmark asks.
		SecretLifetimeLeft: 150 * 24 * time.Hour,
		RotateInterval:     rotateInterval, VisibilityTimeout: 10 * time.Second, RetryMin: time.Second, AwaitDeadline: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("building a world of %d applications: %w", apps, err)
	}
	w := &world{env: env, apps: apps, proxies: map[string][2]*Proxy{}, bins: bins, logs: logs, noWatch: env.ConfigPath + ".nowatch.yaml"}
	b, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("reading the world's configuration: %w", err)
	}
	if err := os.WriteFile(w.noWatch, append(b, "requestPollInterval: 24h\n"...), 0o600); err != nil {
		return nil, fmt.Errorf("writing the configuration without the request watch: %w", err)
	}
	for _, k := range []string{kindDaemon, kindNaive} {
		a, err := NewProxy(env.AWSEndpoint)
		if err != nil {
			return nil, err
		}
		s, err := NewProxy(env.SimURL)
		if err != nil {
			return nil, err
		}
		w.proxies[k] = [2]*Proxy{a, s}
	}
	return w, nil
}

func (w *world) close() {
	for _, p := range w.proxies {
		p[0].Close()
		p[1].Close()
	}
	_ = w.env.Close()
}

// counts merges the AWS and simulator counts of kind's proxies.
func (w *world) counts(kind string) map[string]int {
	p := w.proxies[kind]
	out := p[0].Counts()
	for k, v := range p[1].Counts() {
		out[k] += v
	}
	return out
}

func (w *world) setDelay(kind string, d time.Duration) {
	w.proxies[kind][0].SetDelay(d)
	w.proxies[kind][1].SetDelay(d)
}

// start runs kind against this world through its proxies, with the default configuration when
// watch is set, else with noWatch.
func (w *world) start(kind string, watch bool) (*Proc, error) {
	p := w.proxies[kind]
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "LWA_ROTATOR_") {
			env = append(env, kv)
		}
	}
	env = append(append(env, w.env.Environ()...),
		"AWS_ENDPOINT_URL="+p[0].URL,
		"LWA_ROTATOR_LWA_ENDPOINT="+p[1].URL+"/auth/o2/token",
		"LWA_ROTATOR_SPAPI_ENDPOINT="+p[1].URL)
	cfg := w.noWatch
	if watch {
		cfg = w.env.ConfigPath
	}
	args := []string{"run", "--config", cfg}
	if kind == kindNaive {
		args[0] = "naive"
	}
	return startProc(kind, w.bins[kind], args, env, w.logs)
}

// diff is after − before, without zero entries; total leaves out the polling operations when
// noPolling is set.
func diff(before, after map[string]int, noPolling bool) (map[string]int, int) {
	out, total := map[string]int{}, 0
	for k, v := range after {
		if n := v - before[k]; n != 0 && !(noPolling && polling[k]) {
			out[k] = n
			total += n
		}
	}
	return out, total
}

// waitQuiet waits until kind's non-polling requests have not changed for quiet (bounded by
// limit), so a measurement window holds the whole of what an event caused. Operations in
// ignore do not count (the request watch's DescribeSecret while settling for idle).
func (w *world) waitQuiet(ctx context.Context, kind string, quiet, limit time.Duration, ignore ...string) error {
	deadline := time.Now().Add(limit)
	last, since := w.counts(kind), time.Now()
	for time.Now().Before(deadline) {
		sleep(ctx, 100*time.Millisecond)
		now := w.counts(kind)
		for _, op := range ignore {
			now[op] = last[op]
		}
		if _, n := diff(last, now, true); n != 0 {
			last, since = now, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return nil
		}
	}
	return fmt.Errorf("%s kept making requests for %s", kind, limit)
}

// show renders counts as "op=n, …", largest first.
func show(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if strings.HasPrefix(k, "(") {
			parts = append(parts, k) // a note, not a count
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
