// Package metricshelp gives the Prometheus text of every Novashop process its
// metadata. github.com/VictoriaMetrics/metrics writes samples only unless
// ExposeMetadata is on, and even then its "# HELP" lines carry no text, which
// leaves Prometheus, promtool and Grafana's metric browser with nothing to go
// on. Importing this package turns the metadata on for the whole process (the
// edge, the origin and the worker all import it through the packages that
// define their series, so their tests see it too), and Write fills in each
// family's HELP text from the table its owner passes plus the table of the
// library's Go runtime and process series below.
package metricshelp

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// The library's switch is global; flipping it once here, before any series
// is written, is what makes every /metrics of the process carry # TYPE.
func init() { metrics.ExposeMetadata(true) }

// Help maps a metric family name (without labels or _bucket/_sum/_count) to
// its HELP text.
type Help map[string]string

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Write runs write into a buffer and copies the result to w, completing each
// empty "# HELP name" line from help, then from the Go runtime and process
// table, and correcting the TYPE of the few library series whose type breaks
// Prometheus' naming rules (see runtimeTypes). A family found in neither table
// keeps its empty HELP, which `promtool check metrics` reports: the tests
// that run promtool on every /metrics are what keep the tables complete.
// /metrics is scraped every few seconds, not per request, so the copy costs
// nothing that matters.
func Write(w io.Writer, help Help, write func(io.Writer)) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	write(buf)
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer bufPool.Put(out)
	b := buf.Bytes()
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		rewrite(out, line, help)
	}
	_, _ = w.Write(out.Bytes())
}

var (
	helpPrefix = []byte("# HELP ")
	typePrefix = []byte("# TYPE ")
)

// rewrite copies one line (with its newline, if any) to out, completing an
// empty HELP or correcting a TYPE.
func rewrite(out *bytes.Buffer, line []byte, help Help) {
	body := bytes.TrimRight(line, "\n")
	switch {
	case bytes.HasPrefix(body, helpPrefix):
		name := string(body[len(helpPrefix):])
		if strings.IndexByte(name, ' ') >= 0 {
			break // already has text
		}
		text, ok := help[name]
		if !ok {
			text, ok = runtimeHelp[name]
		}
		if !ok {
			break
		}
		out.Write(helpPrefix)
		out.WriteString(name)
		out.WriteByte(' ')
		out.WriteString(escape(text))
		out.WriteByte('\n')
		return
	case bytes.HasPrefix(body, typePrefix):
		name, _, _ := strings.Cut(string(body[len(typePrefix):]), " ")
		if t, ok := runtimeTypes[name]; ok {
			out.Write(typePrefix)
			out.WriteString(name)
			out.WriteByte(' ')
			out.WriteString(t)
			out.WriteByte('\n')
			return
		}
	}
	out.Write(line)
}

// escape applies the text format's HELP escaping: backslash and newline.
func escape(s string) string {
	if !strings.ContainsAny(s, "\\\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// Families lists the metric family names of a Prometheus text body (from its
// # TYPE lines), sorted as they appear; the tests use it to check that every
// family has a HELP text and that the Grafana dashboard names real series.
func Families(body []byte) []string {
	var out []string
	for _, line := range bytes.Split(body, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, typePrefix); ok {
			name, _, _ := bytes.Cut(rest, []byte(" "))
			out = append(out, string(name))
		}
	}
	return out
}
