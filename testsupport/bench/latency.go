package bench

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// floorTrips are the sequential round trips no client of this protocol can avoid between a new
// secret becoming visible on SQS and its message being deleted: one read of the vault (which
// version is AWSCURRENT), PutSecretValue (stage), the LWA token (prove the secret works),
// UpdateSecretVersionStage (promote) and DeleteMessage. The waiting long poll's answer adds
// half a round trip on top.
const floorTrips = 5

func floor(d time.Duration) time.Duration { return floorTrips*d + d/2 }

// floorOps are the floor's requests as the proxy names them.
var floorOps = []string{"secretsmanager DescribeSecret", "secretsmanager PutSecretValue", "lwa token",
	"secretsmanager UpdateSecretVersionStage", "sqs DeleteMessage"}

// servedFloor is the floor at this run's servers' speed: the injected delays, plus the time the
// upstreams themselves took to answer the floor's requests in this rotation (the first of each
// kind inside the window) and the time from the message becoming visible to the long poll's
// answer leaving the upstream. moto and the simulator on this machine take milliseconds a
// request, which a perfect client would pay too; what is left above this floor is the client's
// own time.
func servedFloor(d time.Duration, rotated time.Time, events []Event) time.Duration {
	f := floor(d)
	seen := map[string]bool{}
	polled := false
	for _, e := range events {
		if !e.Upstream.After(rotated) {
			continue
		}
		if e.Op == "sqs ReceiveMessage" && !polled {
			polled = true
			f += max(e.Upstream.Sub(rotated), 0)
			continue
		}
		if slices.Contains(floorOps, e.Op) && !seen[e.Op] && e.Sent.After(rotated) {
			seen[e.Op] = true
			f += e.Upstream.Sub(e.Sent)
		}
	}
	return f
}

// latency measures, per injected delay, new secret visible on SQS (the simulator delivers
// before it answers the rotate call, so: the moment the proxy has the rotate call's answer from
// upstream) → AWSCURRENT moved and the message deleted (the moment the proxy hands the client
// the DeleteMessage answer), over Rotations SIGUSR1 rotations of a one-application world.
func (r *runner) latency(ctx context.Context) error {
	r.say("building the latency world")
	w, err := newWorld(ctx, r.motoURL, r.dir, 1, time.Second, r.bins, r.o.Logs)
	if err != nil {
		return err
	}
	r.worlds[-1] = w
	res := map[time.Duration]map[string][]float64{}
	served := map[time.Duration]map[string][]float64{} // each rotation's latency ÷ its served floor
	path := map[time.Duration]map[string][]float64{}
	slowest := map[time.Duration]map[string]string{}
	for _, kind := range r.kinds() {
		if err := w.abandonedPollsGone(ctx); err != nil {
			return err
		}
		p, err := w.start(kind, false)
		if err != nil {
			return err
		}
		if _, err := waitFor(ctx, time.Minute, func() bool { c, _ := get(p.Addr, "/readyz"); return c == 200 }); err != nil {
			p.Stop()
			return fmt.Errorf("%s never became ready in the latency world: %w", kind, err)
		}
		if err := w.waitQuiet(ctx, kind, time.Second, time.Minute); err != nil {
			p.Stop()
			return err
		}
		for _, d := range r.o.Delays {
			w.setDelay(kind, d)
			if res[d] == nil {
				res[d], path[d], slowest[d], served[d] = map[string][]float64{}, map[string][]float64{}, map[string]string{}, map[string][]float64{}
			}
			var worst time.Duration
			for i := range r.o.Rotations {
				lat, sf, ops, err := r.oneLatency(ctx, w, kind, p)
				if err != nil {
					p.Stop()
					return fmt.Errorf("%s, delay %s, rotation %d: %w", kind, d, i+1, err)
				}
				res[d][kind] = append(res[d][kind], ms(lat))
				served[d][kind] = append(served[d][kind], float64(lat)/float64(sf))
				n := 0
				for _, c := range ops {
					n += c
				}
				path[d][kind] = append(path[d][kind], float64(n))
				if lat > worst {
					worst, slowest[d][kind] = lat, show(ops)
				}
			}
			r.say("%s at %s: p50 %.0f ms, p99 %.0f ms", kind, d, median(res[d][kind]), percentile(res[d][kind], 99))
		}
		w.setDelay(kind, 0)
		w.stop(p)
	}
	for _, d := range r.o.Delays {
		p50, p99 := map[string]float64{}, map[string]float64{}
		for _, kind := range r.kinds() {
			p50[kind], p99[kind] = median(res[d][kind]), percentile(res[d][kind], 99)
		}
		fl := ms(floor(d))
		note := fmt.Sprintf("%d rotations; floor %.0f ms (%d round trips + the long poll's return); requests answered inside the window, median: daemon %.0f, naive %.0f; slowest daemon rotation's: %s",
			r.o.Rotations, fl, floorTrips, median(path[d][kindDaemon]), median(path[d][kindNaive]), slowest[d][kindDaemon])
		if fl > 0 {
			note += fmt.Sprintf("; daemon p99 = %.2f× floor", p99[kindDaemon]/fl)
		}
		note += fmt.Sprintf("; latency ÷ the floor at these servers' speed (servedFloor), p50 / p99: daemon %.2f / %.2f",
			median(served[d][kindDaemon]), percentile(served[d][kindDaemon], 99))
		if len(served[d][kindNaive]) > 0 {
			note += fmt.Sprintf(", naive %.2f / %.2f", median(served[d][kindNaive]), percentile(served[d][kindNaive], 99))
		}
		sp99 := map[string]float64{}
		for _, kind := range r.kinds() {
			sp99[kind] = percentile(served[d][kind], 99)
		}
		r.pair(fmt.Sprintf("latency_served_floor_ratio_p99_%dms", d.Milliseconds()),
			fmt.Sprintf("new secret on SQS → promoted and deleted, p99 of latency ÷ the floor at these servers' speed, %s injected", d), "×", 1, sp99,
			"the floor: the injected delays of the 5 unavoidable round trips and the long poll's return, plus the time the upstreams took to answer them in the same rotation")
		r.pair(fmt.Sprintf("latency_p50_ms_%dms", d.Milliseconds()), fmt.Sprintf("new secret on SQS → promoted and deleted, p50, %s injected", d), "ms", 1, p50, note)
		r.pair(fmt.Sprintf("latency_p99_ms_%dms", d.Milliseconds()), fmt.Sprintf("new secret on SQS → promoted and deleted, p99, %s injected", d), "ms", 1, p99, note)
	}
	return nil
}

// oneLatency is one SIGUSR1 rotation: its latency, and the requests the client got answers to
// inside that window (visible → deleted), by operation, polling included.
func (r *runner) oneLatency(ctx context.Context, w *world, kind string, p *Proc) (time.Duration, time.Duration, map[string]int, error) {
	a := w.env.Applications[0]
	px := w.proxies[kind]
	px[0].Record(true)
	px[1].Record(true)
	defer px[0].Record(false)
	defer px[1].Record(false)
	calls := w.env.Sim.RotateCalls(a.ClientID)
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		return 0, 0, nil, err
	}
	var lat time.Duration
	var rotated, deleted time.Time
	if _, err := waitFor(ctx, time.Minute, func() bool {
		if w.env.Sim.RotateCalls(a.ClientID) <= calls {
			return false
		}
		for _, e := range px[1].Events() {
			if e.Op == "spapi rotateClientSecret" {
				rotated = e.Upstream
			}
		}
		if rotated.IsZero() {
			return false
		}
		for _, e := range px[0].Events() {
			if e.Op == "sqs DeleteMessage" && e.Done.After(rotated) {
				lat, deleted = e.Done.Sub(rotated), e.Done
				return true
			}
		}
		return false
	}); err != nil {
		return 0, 0, nil, fmt.Errorf("no delete after the rotate call: %w", err)
	}
	ops := map[string]int{}
	events := append(px[0].Events(), px[1].Events()...)
	sf := servedFloor(px[0].Delay(), rotated, events)
	for _, e := range events {
		if e.Done.After(rotated) && !e.Done.After(deleted) {
			ops[e.Op]++
		}
	}
	newest, _, _ := w.env.Sim.Newest(a.ClientID)
	if cur, err := w.env.Store.Current(ctx, a.SecretID); err != nil || !cur.Record.ClientSecret.Equal(newest) {
		return 0, 0, nil, fmt.Errorf("message deleted but AWSCURRENT does not hold the new secret (%v)", err)
	}
	if err := w.waitQuiet(ctx, kind, 300*time.Millisecond, time.Minute); err != nil {
		return 0, 0, nil, err
	}
	// The simulator refuses a second rotate call within its interval (1 s here).
	sleep(ctx, time.Until(rotated.Add(1100*time.Millisecond)))
	return lat, sf, ops, nil
}
