// Package bench measures lwa-rotator from outside: it builds the daemon binary, runs it against
// moto and the SP-API/LWA simulator through the benchmark's own counting, delay-injecting proxy,
// and reports each figure of issue 13 beside a naive baseline (naive.go) run in the same worlds.
// `go run ./cmd/lwa-rotator-bench` is the command; docs/performance.md holds the results.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
)

// Options shape a run. Zero values take the defaults of the full run.
type Options struct {
	Apps          []int           // world sizes (default 1, 100, 1000)
	IdleWindow    time.Duration   // idle measurement window (default 60s)
	Starts        int             // start-ups per size and kind (default 3; 2 at 1000 applications or more, for the time budget)
	Rotations     int             // rotations per injected delay (default 15)
	Delays        []time.Duration // injected delays (default 0, 20ms, 50ms)
	Scrapes       int             // /metrics scrapes timed at the largest size (default 50)
	Backlog       int             // backlog messages at the largest size (default 500; negative skips)
	PerMessage    int             // notifications of each no-op kind sent to a running client (default 10)
	Quiet         time.Duration   // how long requests must stop before an event counts as done (default 2s)
	NoNaive       bool            // skip the naive baseline
	Progress      io.Writer       // progress lines (nil: discard)
	Logs          io.Writer       // the processes' own output (nil: discard)
	defaultStarts bool            // Starts was left to its default
}

// Quick is the development run: one application, short windows.
func Quick() Options {
	return Options{Apps: []int{1}, IdleWindow: 10 * time.Second, Starts: 2, Rotations: 3,
		Delays: []time.Duration{0, 20 * time.Millisecond}, Scrapes: 10, Backlog: 40, PerMessage: 4, Quiet: time.Second}
}

func (o *Options) defaults() {
	if len(o.Apps) == 0 {
		o.Apps = []int{1, 100, 1000}
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = time.Minute
	}
	if o.Starts == 0 {
		o.Starts, o.defaultStarts = 3, true
	}
	if o.Rotations == 0 {
		o.Rotations = 15
	}
	if len(o.Delays) == 0 {
		o.Delays = []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond}
	}
	if o.Scrapes == 0 {
		o.Scrapes = 50
	}
	if o.Backlog == 0 {
		o.Backlog = 500
	}
	if o.PerMessage == 0 {
		o.PerMessage = 10
	}
	if o.Quiet == 0 {
		o.Quiet = 2 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	sort.Ints(o.Apps)
}

// Figure is one measured quantity for one world size, for the daemon and the naive baseline.
type Figure struct {
	Key    string   `json:"key"`
	Name   string   `json:"name"`
	Apps   int      `json:"apps"`
	Unit   string   `json:"unit"`
	Daemon float64  `json:"daemon"`
	Naive  *float64 `json:"naive,omitempty"`
	// Ratio is naive ÷ daemon: above 1 the daemon does better on a smaller-is-better figure.
	Ratio  *float64 `json:"ratio,omitempty"`
	Detail string   `json:"detail,omitempty"`
}

// Result is one run.
type Result struct {
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	Figures  []Figure `json:"figures"`
	Elapsed  string   `json:"elapsed"`
}

// Settings record the options a result was measured with.
type Settings struct {
	Apps       []int    `json:"apps"`
	IdleWindow string   `json:"idleWindow"`
	Starts     int      `json:"starts"`
	Rotations  int      `json:"rotationsPerDelay"`
	Delays     []string `json:"delays"`
	Scrapes    int      `json:"scrapes"`
	Backlog    int      `json:"backlogMessages"`
	Naive      bool     `json:"naive"`
}

type runner struct {
	o       Options
	res     *Result
	motoURL string
	dir     string
	bins    map[string]string
	worlds  map[int]*world
	running map[string]*Proc // "kind/apps" → process left running between phases
	// startReq is the median start-up request count per "kind/apps", subtracted from a backlog.
	startReq map[string]float64
	idleRSS  map[string]float64
}

// Run performs every measurement and returns the figures.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	began := time.Now()
	r := &runner{o: o, res: &Result{Machine: DescribeMachine()}, worlds: map[int]*world{}, running: map[string]*Proc{},
		startReq: map[string]float64{}, idleRSS: map[string]float64{}}
	r.res.Settings = Settings{Apps: o.Apps, IdleWindow: o.IdleWindow.String(), Starts: o.Starts, Rotations: o.Rotations,
		Scrapes: o.Scrapes, Backlog: o.Backlog, Naive: !o.NoNaive}
	for _, d := range o.Delays {
		r.res.Settings.Delays = append(r.res.Settings.Delays, d.String())
	}
	var err error
	if r.dir, err = os.MkdirTemp("", "lwa-rotator-bench-"); err != nil {
		return nil, fmt.Errorf("making the benchmark directory: %w", err)
	}
	defer os.RemoveAll(r.dir)
	r.say("building the daemon and the naive baseline")
	if r.bins, err = build(ctx, r.dir); err != nil {
		return nil, err
	}
	r.say("starting moto")
	srv, err := moto.Start(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("starting moto: %w", err)
	}
	defer srv.Stop()
	r.motoURL = srv.URL
	defer func() {
		for _, p := range r.running {
			p.Stop()
		}
		for _, w := range r.worlds {
			w.close()
		}
	}()
	for _, phase := range []func(context.Context) error{r.startups, r.idle, r.rotations, r.latency, r.backlog} {
		if err := phase(ctx); err != nil {
			return r.res, err
		}
	}
	r.res.Elapsed = time.Since(began).Round(time.Second).String()
	return r.res, nil
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "bench %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (r *runner) kinds() []string {
	if r.o.NoNaive {
		return []string{kindDaemon}
	}
	return []string{kindDaemon, kindNaive}
}

// build compiles the daemon and this benchmark's command (which holds the naive baseline).
func build(ctx context.Context, dir string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return nil, errors.New("finding the module root with `go env GOMOD`: run the benchmark inside the lwa-rotator module")
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bins := map[string]string{kindDaemon: filepath.Join(dir, "lwa-rotator"), kindNaive: filepath.Join(dir, "lwa-rotator-bench")}
	for kind, pkg := range map[string]string{kindDaemon: "./cmd/lwa-rotator", kindNaive: "./cmd/lwa-rotator-bench"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bins[kind], pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %w: %s", pkg, err, b)
		}
	}
	return bins, nil
}

func (r *runner) add(f Figure) { r.res.Figures = append(r.res.Figures, f) }

// pair records a figure measured for both kinds (naive absent when not measured).
func (r *runner) pair(key, name, unit string, apps int, vals map[string]float64, detail string) {
	f := Figure{Key: key, Name: name, Unit: unit, Apps: apps, Daemon: vals[kindDaemon], Detail: detail}
	if v, ok := vals[kindNaive]; ok {
		f.Naive = &v
		if f.Daemon != 0 {
			ratio := v / f.Daemon
			f.Ratio = &ratio
		}
	}
	r.add(f)
}

func pkey(kind string, apps int) string { return fmt.Sprintf("%s/%d", kind, apps) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startups builds each world and starts each kind Starts times; the last start is left running
// for the idle phase.
func (r *runner) startups(ctx context.Context) error {
	for _, n := range r.o.Apps {
		r.say("building a world of %d applications", n)
		w, err := newWorld(ctx, r.motoURL, r.dir, n, time.Second, r.bins, r.o.Logs)
		if err != nil {
			return err
		}
		r.worlds[n] = w
		ready, pass, reqs := map[string]float64{}, map[string]float64{}, map[string]float64{}
		details := map[string]string{}
		for _, kind := range r.kinds() {
			var readies, passes, counts []float64
			starts := r.o.Starts
			if n >= 1000 && r.o.defaultStarts {
				starts = 2
			}
			for i := range starts {
				before := w.counts(kind)
				p, err := w.start(kind, true)
				if err != nil {
					return err
				}
				tReady, err := waitFor(ctx, 5*time.Minute, func() bool { c, _ := get(p.Addr, "/readyz"); return c == 200 || p.Exited() })
				if err != nil || p.Exited() {
					p.Stop()
					return fmt.Errorf("%s with %d applications never became ready", kind, n)
				}
				tPass := tReady
				if kind == kindDaemon {
					if tPass, err = waitFor(ctx, 5*time.Minute, func() bool { return allAppsReady(p.Addr, n) }); err != nil {
						p.Stop()
						return fmt.Errorf("daemon with %d applications: first pass: %w", n, err)
					}
				}
				got, total := diff(before, w.counts(kind), false)
				readies = append(readies, ms(tReady.Sub(p.Start)))
				passes = append(passes, ms(tPass.Sub(p.Start)))
				counts = append(counts, float64(total))
				details[kind] = show(got)
				r.say("%s, %d apps, start %d: ready %.0f ms, first pass %.0f ms, %d requests", kind, n, i+1,
					readies[len(readies)-1], passes[len(passes)-1], total)
				if i == starts-1 {
					r.running[pkey(kind, n)] = p
				} else {
					p.Stop()
				}
			}
			ready[kind], pass[kind], reqs[kind] = median(readies), median(passes), median(counts)
			r.startReq[pkey(kind, n)] = reqs[kind]
		}
		r.pair("startup_readyz_ms", "start-up: exec → /readyz 200, median", "ms", n, ready, "")
		r.pair("startup_first_pass_ms", "start-up: exec → first scheduler pass done, median", "ms", n, pass,
			"daemon: every lwa_rotator_application_ready at 1; naive: its pass ends before it reports ready")
		r.pair("startup_requests", "start-up requests (exec → first pass done), median", "requests", n, reqs,
			"daemon: "+details[kindDaemon]+"; naive: "+details[kindNaive])
	}
	return nil
}

// idle measures every running process at once over one window: they are idle, so they do not
// disturb each other, and one window serves every size.
func (r *runner) idle(ctx context.Context) error {
	r.say("settling before the idle window")
	for _, n := range r.o.Apps {
		for _, kind := range r.kinds() {
			if err := r.worlds[n].waitQuiet(ctx, kind, r.o.Quiet, 2*time.Minute, "secretsmanager DescribeSecret"); err != nil {
				return err
			}
		}
	}
	type start struct {
		counts map[string]int
		cpu    time.Duration
		ticks  time.Duration
	}
	begin := map[string]start{}
	for k, p := range r.running {
		cpu, err := p.CPU()
		if err != nil {
			return err
		}
		ticks, _ := p.TicksCPU()
		kind, n := splitKey(k)
		begin[k] = start{r.worlds[n].counts(kind), cpu, ticks}
	}
	t0 := time.Now()
	r.say("idle window of %s over %d processes", r.o.IdleWindow, len(r.running))
	sleep(ctx, r.o.IdleWindow)
	window := time.Since(t0)
	perHour := float64(time.Hour) / float64(window)
	for _, n := range r.o.Apps {
		reqs, cpu, rss := map[string]float64{}, map[string]float64{}, map[string]float64{}
		details := map[string]string{}
		for _, kind := range r.kinds() {
			k := pkey(kind, n)
			p := r.running[k]
			c, err := p.CPU()
			if err != nil {
				return err
			}
			ticks, _ := p.TicksCPU()
			got, total := diff(begin[k].counts, r.worlds[n].counts(kind), false)
			reqs[kind] = float64(total) * perHour
			cpu[kind] = (c - begin[k].cpu).Seconds() * perHour
			if rss[kind], err = p.RSS(); err != nil {
				return err
			}
			r.idleRSS[k] = rss[kind]
			details[kind] = fmt.Sprintf("%s in %s: %s; utime+stime ×scale %.2f s/h", kind, window.Round(time.Second), show(got),
				(ticks-begin[k].ticks).Seconds()*perHour)
		}
		note := fmt.Sprintf("scaled from a %s window; ", window.Round(time.Second))
		r.pair("idle_requests_per_hour", "idle requests per hour", "requests/h", n, reqs, note+details[kindDaemon]+"; "+details[kindNaive])
		r.pair("idle_cpu_seconds_per_hour", "idle CPU seconds per hour", "s/h", n, cpu, note+"thread run time from /proc/PID/task/*/schedstat")
		r.pair("idle_rss_mib", "idle RSS (VmRSS)", "MiB", n, rss, "")
	}
	return nil
}

func splitKey(k string) (string, int) {
	kind, num, _ := strings.Cut(k, "/")
	var n int
	fmt.Sscan(num, &n)
	return kind, n
}

// rotation starts one rotation with trigger and waits until app 0's newest secret is
// AWSCURRENT and the requests have stopped; it returns the requests that are not polling.
func (r *runner) rotation(ctx context.Context, w *world, p *Proc, trigger func() error) (map[string]int, int, error) {
	kind := p.Kind
	a := w.env.Applications[0]
	before := w.counts(kind)
	var own map[string]int
	if kind == kindDaemon {
		own = daemonCounts(p.Addr)
	}
	calls := w.env.Sim.RotateCalls(a.ClientID)
	if err := trigger(); err != nil {
		return nil, 0, err
	}
	if _, err := waitFor(ctx, 2*time.Minute, func() bool {
		if w.env.Sim.RotateCalls(a.ClientID) <= calls {
			return false
		}
		newest, _, _ := w.env.Sim.Newest(a.ClientID)
		cur, err := w.env.Store.Current(ctx, a.SecretID)
		return err == nil && cur.Record.ClientSecret.Equal(newest)
	}); err != nil {
		return nil, 0, fmt.Errorf("%s with %d applications: rotation not promoted: %w", kind, w.apps, err)
	}
	if err := w.waitQuiet(ctx, kind, r.o.Quiet, 2*time.Minute); err != nil {
		return nil, 0, err
	}
	got, total := diff(before, w.counts(kind), true)
	if kind == kindDaemon {
		// Cross-check: the daemon's own lwa_rotator_api_requests_total over the same window.
		if _, mine := diff(own, daemonCounts(p.Addr), true); mine != total {
			got["(daemon's own counter: "+fmt.Sprint(mine)+")"] = 0
		} else {
			got["(daemon's own counter agrees)"] = 0
		}
	}
	return got, total, nil
}

// expiryNotice is Amazon's word that app 0's secret expires in 20 days: inside renewBefore and
// earlier than the stored expiry, so a rotation is due.
func expiryNotice(ctx context.Context, w *world) func() error {
	return func() error {
		_, err := w.env.Sim.SendExpiryNotice(ctx, w.env.Applications[0].ClientID, time.Now().Add(20*24*time.Hour))
		return err
	}
}

// rotations counts one rotation's requests per trigger: the daemon first (naive stopped), then
// the naive baseline (daemon stopped), so only one client reads the queues.
func (r *runner) rotations(ctx context.Context) error {
	sig := map[string]float64{}
	exp := map[int]map[string]float64{}
	perMsg := map[string]map[string]float64{}
	details := map[string]string{}
	for _, kind := range r.kinds() {
		// Only this kind runs while it is measured, freshly started after abandoned polls
		// are gone.
		for k, p := range r.running {
			_, n := splitKey(k)
			r.worlds[n].stop(p)
			delete(r.running, k)
		}
		for _, n := range r.o.Apps {
			w := r.worlds[n]
			if err := w.abandonedPollsGone(ctx); err != nil {
				return err
			}
			p, err := w.start(kind, false)
			if err != nil {
				return err
			}
			r.running[pkey(kind, n)] = p
			if _, err := waitFor(ctx, 5*time.Minute, func() bool { c, _ := get(p.Addr, "/readyz"); return c == 200 }); err != nil {
				return fmt.Errorf("%s with %d applications never became ready: %w", kind, n, err)
			}
			if kind == kindDaemon {
				if _, err := waitFor(ctx, 5*time.Minute, func() bool { return allAppsReady(p.Addr, n) }); err != nil {
					return fmt.Errorf("daemon with %d applications: first pass: %w", n, err)
				}
			}
			if err := w.waitQuiet(ctx, kind, r.o.Quiet, 2*time.Minute); err != nil {
				return err
			}
			got, total, err := r.rotation(ctx, w, p, expiryNotice(ctx, w))
			if err != nil {
				return err
			}
			if exp[n] == nil {
				exp[n] = map[string]float64{}
			}
			exp[n][kind] = float64(total)
			details[fmt.Sprintf("exp %s %d", kind, n)] = show(got)
			r.say("%s, %d apps: expiry-notice rotation: %d requests: %s", kind, n, total, show(got))
			sleep(ctx, 1100*time.Millisecond) // the simulator's rotate interval
			// After the expiry-notice rotation: a notice must predate the stored expiry, and a
			// fresh rotation pushes that to 180 days.
			if n == 1 {
				got, total, err := r.rotation(ctx, w, p, func() error { return p.Signal(syscall.SIGUSR1) })
				if err != nil {
					return err
				}
				sig[kind] = float64(total)
				details["sig "+kind] = show(got)
				r.say("%s: SIGUSR1 rotation: %d requests: %s", kind, total, show(got))
			}
			if n == r.o.Apps[len(r.o.Apps)-1] {
				per, err := r.perMessage(ctx, w, p, r.o.PerMessage)
				if err != nil {
					return err
				}
				for k, v := range per {
					if perMsg[k] == nil {
						perMsg[k] = map[string]float64{}
					}
					perMsg[k][kind] = v
				}
				r.say("%s, %d apps: requests per no-op message: %v", kind, n, per)
				if kind == kindDaemon {
					continue // kept running for the scrape
				}
			}
			w.stop(p)
			delete(r.running, pkey(kind, n))
		}
		if kind == kindDaemon {
			if err := r.scrape(ctx); err != nil {
				return err
			}
			for k, p := range r.running {
				_, n := splitKey(k)
				r.worlds[n].stop(p)
				delete(r.running, k)
			}
		}
	}
	if _, ok := r.worlds[1]; ok {
		r.pair("rotation_sigusr1_requests", "one rotation started by SIGUSR1 → promoted, requests (polling left out)", "requests", 1, sig,
			"daemon: "+details["sig daemon"]+"; naive: "+details["sig naive"])
	}
	big := r.o.Apps[len(r.o.Apps)-1]
	for _, k := range []struct{ key, name string }{
		{"expiry", "requests per expiry notice that changes nothing"},
		{"duplicate", "requests per message when each expiry notice arrives twice"},
		{"stale", "requests per stale new-secret replay (the secret already current)"},
	} {
		r.pair("message_requests_"+k.key, k.name+" (polling left out)", "requests", big, perMsg[k.key],
			fmt.Sprintf("%d notifications to a running client, for distinct applications where the world has them", r.o.PerMessage))
	}
	for _, n := range r.o.Apps {
		r.pair("rotation_expiry_requests", "one rotation started by an expiry notice → promoted, requests (polling left out)", "requests", n, exp[n],
			"daemon: "+details[fmt.Sprintf("exp daemon %d", n)]+"; naive: "+details[fmt.Sprintf("exp naive %d", n)])
	}
	return nil
}

// scrape times Scrapes sequential /metrics scrapes of the daemon at the largest size.
func (r *runner) scrape(ctx context.Context) error {
	n := r.o.Apps[len(r.o.Apps)-1]
	p := r.running[pkey(kindDaemon, n)]
	if err := r.worlds[n].waitQuiet(ctx, kindDaemon, r.o.Quiet, 2*time.Minute); err != nil {
		return err
	}
	c0, err := p.CPU()
	if err != nil {
		return err
	}
	t0 := time.Now()
	var size int
	for range r.o.Scrapes {
		code, body := get(p.Addr, "/metrics")
		if code != 200 {
			return fmt.Errorf("scraping the daemon: status %d", code)
		}
		size = len(body)
	}
	elapsed := time.Since(t0)
	c1, err := p.CPU()
	if err != nil {
		return err
	}
	per := ms(c1-c0) / float64(r.o.Scrapes)
	r.add(Figure{Key: "scrape_bytes", Name: "/metrics scrape size", Unit: "bytes", Apps: n, Daemon: float64(size),
		Detail: "naive baseline has no /metrics"})
	r.add(Figure{Key: "scrape_cpu_ms", Name: "/metrics scrape CPU per scrape", Unit: "ms", Apps: n, Daemon: per,
		Detail: fmt.Sprintf("process CPU delta over %d sequential scrapes (%.1f ms wall each); at a 15 s interval: %.1f CPU-s/h",
			r.o.Scrapes, ms(elapsed)/float64(r.o.Scrapes), per*240/1000)})
	r.say("scrape at %d apps: %d bytes, %.1f ms CPU", n, size, per)
	r.worlds[n].stop(p)
	delete(r.running, pkey(kindDaemon, n))
	return nil
}
