package metrics

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics. The text format, which Prometheus asks for unless configured
// otherwise, is written here: the registry's families through expfmt, the per-application
// counters encoded from their vectors, then the per-application state lines straight from the
// rotator's snapshot, gzip-compressed at BestSpeed when the client accepts it. Going through
// client_golang's Gather for a thousand applications' series (a const metric per state series,
// consistency checks and a hash per series, a sort of each family) cost most of a scrape's CPU;
// the counter vectors cannot hold an invalid or duplicate series (WithLabelValues refuses
// invalid UTF-8, and a vector has one counter per label set), and the text format needs no order
// within a family. Every other format (protobuf, or a registry that fails to gather) is served by
// promhttp over Gatherer, which holds the same series from the same collectors.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer gathers everything /metrics serves: the registry given to New and the state.
func (m *Metrics) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{m.reg, m.stateReg} }

type textHandler struct {
	reg      *prometheus.Registry
	state    *stateCollector
	counters []counterFamily // per application: many series, written without Gather
	other    http.Handler    // promhttp over Gatherer
}

var (
	bufPool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	linePool = sync.Pool{New: func() any { s := make([][]byte, len(appFamilies)); return &s }}
	gzipPool = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level never fails
		return w
	}}
	// The text format's escapes: a label value escapes \, " and newline; help text \ and newline.
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func init() {
	for i, f := range appFamilies {
		f.idx = i
	}
}

func (h *textHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.Negotiate(r.Header)
	if format.FormatType() != expfmt.TypeTextPlain {
		h.other.ServeHTTP(w, r)
		return
	}
	families, err := h.reg.Gather()
	if err != nil {
		h.other.ServeHTTP(w, r) // promhttp reports the error its own way
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(buf, f); err != nil {
			h.other.ServeHTTP(w, r)
			return
		}
	}
	for _, c := range h.counters {
		if err := writeCounters(buf, c); err != nil {
			h.other.ServeHTTP(w, r)
			return
		}
	}
	h.state.writeText(buf)

	w.Header().Set("Content-Type", string(format))
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		_, _ = w.Write(buf.Bytes())
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(gz)
	gz.Reset(w)
	_, _ = gz.Write(buf.Bytes())
	_ = gz.Close()
}

// acceptsGzip reports whether an Accept-Encoding header lists gzip without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// counterFamily is a counter vector with the name and help it was made with.
type counterFamily struct {
	name, help string
	vec        *prometheus.CounterVec
}

func newCounterFamily(name, help string, labels ...string) counterFamily {
	return counterFamily{name: ns + "_" + name, help: help,
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)}
}

// writeCounters appends the series of one counter vector as one family in the text format.
func writeCounters(buf *bytes.Buffer, c counterFamily) error {
	ch := make(chan prometheus.Metric, 256)
	go func() {
		c.vec.Collect(ch)
		close(ch)
	}()
	mf := &dto.MetricFamily{Name: &c.name, Help: &c.help, Type: dto.MetricType_COUNTER.Enum()}
	var err error
	for m := range ch {
		if err != nil {
			continue // drain, so the collecting goroutine ends
		}
		pb := &dto.Metric{}
		if err = m.Write(pb); err == nil {
			mf.Metric = append(mf.Metric, pb)
		}
	}
	if err != nil || len(mf.Metric) == 0 {
		return err
	}
	_, err = expfmt.MetricFamilyToText(buf, mf)
	return err
}

// writeText appends the state families in the text format: each family's header, then one line
// per application in the snapshot's order.
func (c *stateCollector) writeText(buf *bytes.Buffer) {
	lp := linePool.Get().(*[][]byte)
	defer linePool.Put(lp)
	lines := *lp
	for i := range lines {
		lines[i] = lines[i][:0]
	}
	for _, s := range c.state.Snapshot() {
		app := s.App
		if strings.ContainsAny(app, "\\\"\n") {
			app = labelEscaper.Replace(app)
		}
		stateSeries(s, func(f *family, v float64) {
			b := append(lines[f.idx], f.name...)
			b = append(b, `{application="`...)
			b = append(b, app...)
			b = append(b, `"} `...)
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
			lines[f.idx] = append(b, '\n')
		})
	}
	for _, f := range appFamilies {
		if len(lines[f.idx]) > 0 {
			buf.Write(f.header)
			buf.Write(lines[f.idx])
		}
	}
	buf.Write(famReady.header)
	buf.WriteString(famReady.name)
	if c.isReady() {
		buf.WriteString(" 1\n")
	} else {
		buf.WriteString(" 0\n")
	}
}
