package shoptest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard shipped for operators.
const dashboardFile = "../../configs/grafana/novashop.json"

// selector is one metric name in a PromQL expression with the label names
// its {…} matchers use.
type selector struct {
	name   string
	labels []string
}

var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// promqlSelectors returns the metric names an expression reads. It is a
// tokenizer, not a parser: strings, range and subquery brackets and grouping
// lists are skipped, an identifier followed by "(" is a function or an
// aggregation, and what is left is a metric name.
func promqlSelectors(expr string) ([]selector, error) {
	var out []selector
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	// closing returns the index just past the bracket that closes the one at i,
	// skipping quoted strings.
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				k := j + 1
				for k < len(expr) && expr[k] != c {
					if expr[k] == '\\' && c != '`' {
						k++
					}
					k++
				}
				j = k
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unclosed %q at %d in %q", open, i, expr)
	}
	labelRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	prevGrouping := false
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k := i + 1 // a string: skip to its closing quote
			for k < len(expr) && expr[k] != c {
				if expr[k] == '\\' && c != '`' {
					k++
				}
				k++
			}
			i = k + 1
		case c == '[':
			end, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{':
			// A selector without a name ({__name__="x"}) or matchers of the
			// previous name, handled there.
			end, err := closing(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '(' && prevGrouping:
			end, err := closing(i, '(', ')')
			if err != nil {
				return nil, err
			}
			i, prevGrouping = end, false
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++ // a number or a duration
			}
		case c == '$':
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++ // a Grafana variable
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			switch {
			case promqlKeywords[strings.ToLower(word)]:
				prevGrouping = word == "by" || word == "without" || word == "on" || word == "ignoring" ||
					word == "group_left" || word == "group_right"
				i = j
				continue
			case next < len(expr) && expr[next] == '(':
				i = j // a function or an aggregation
				continue
			case nextWord(expr, next) == "by" || nextWord(expr, next) == "without":
				i = j // an aggregation with its grouping first: sum by (x) (…)
				continue
			}
			sel := selector{name: word}
			i = j
			if next < len(expr) && expr[next] == '{' {
				end, err := closing(next, '{', '}')
				if err != nil {
					return nil, err
				}
				for _, m := range labelRE.FindAllStringSubmatch(expr[next:end], -1) {
					sel.labels = append(sel.labels, m[1])
				}
				i = end
			}
			out = append(out, sel)
		default:
			i++
		}
		prevGrouping = prevGrouping && (c == ' ' || c == '\t')
	}
	return out, nil
}

// nextWord is the identifier that starts at i, if any.
func nextWord(expr string, i int) string {
	j := i
	for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || j > i && expr[j] >= '0' && expr[j] <= '9') {
		j++
	}
	return expr[i:j]
}

func TestPromqlSelectors(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{`sum by (status) (rate(edge_requests_total{job=~"$edge_job"}[$__rate_interval]))`, "edge_requests_total{job}"},
		{`histogram_quantile(0.99, sum by (upstream, le) (rate(a_bucket{x="y}z", job="j"}[5m])))`, "a_bucket{x,job}"},
		{`sum(rate(a_total[1m])) / sum(rate(b_total[1m])) > 0.5 and on (instance) c`, "a_total b_total c"},
		{`increase(d_total{result=~"hit|stale"}[1h] offset 5m)`, "d_total{result}"},
		{`max(gauge_one) without (instance) or vector(0)`, "gauge_one"},
		{`a_total / bytes_total`, "a_total bytes_total"},
		{`sum without (le, instance) (rate(x_seconds_count[5m])) * 1e3`, "x_seconds_count"},
	}
	for _, tt := range tests {
		sels, err := promqlSelectors(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sels {
			if len(s.labels) > 0 {
				got = append(got, s.name+"{"+strings.Join(s.labels, ",")+"}")
			} else {
				got = append(got, s.name)
			}
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s\n got %q\nwant %q", tt.expr, strings.Join(got, " "), tt.want)
		}
	}
}

// dashboardExprs returns every PromQL expression of the dashboard, labelled
// by where it sits: panel targets (rows' nested panels too) and the
// templating queries.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
			}
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("%s: variable %q: want label_values(metric, label), got %q", dashboardFile, v.Name, v.Definition)
			continue
		}
		// As a selector, so the label is checked on the metric too.
		out[fmt.Sprintf("variable %q", v.Name)] = fmt.Sprintf(`%s{%s=""}`, m[1], m[2])
	}
	return out
}

// seriesLabels maps every sample name of Prometheus text bodies (so with
// _bucket, _sum and _count) to the label names it carries; Prometheus adds
// job and instance when it scrapes.
func seriesLabels(bodies ...[]byte) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, b := range bodies {
		for _, line := range strings.Split(string(b), "\n") {
			m := sample.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if out[m[1]] == nil {
				out[m[1]] = map[string]bool{"job": true, "instance": true}
			}
			for _, l := range label.FindAllStringSubmatch(m[2], -1) {
				out[m[1]][l[1]] = true
			}
		}
	}
	return out
}

// checkDashboard: every expression of the dashboard names at least one
// metric, every metric it names is a series the real scrapes show, and every
// label its matchers use is one those series carry.
func checkDashboard(t *testing.T, s scrapes) {
	series := seriesLabels(s.edge, s.origin, s.worker)
	exprs := dashboardExprs(t)
	if len(exprs) < 20 {
		t.Fatalf("%s: only %d expressions; the walk is broken", dashboardFile, len(exprs))
	}
	where := make([]string, 0, len(exprs))
	for w := range exprs {
		where = append(where, w)
	}
	slices.Sort(where)
	file := filepath.Base(dashboardFile)
	for _, w := range where {
		sels, err := promqlSelectors(exprs[w])
		if err != nil {
			t.Errorf("%s: %s: %v", file, w, err)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: %s names no metric: %s", file, w, exprs[w])
		}
		for _, sel := range sels {
			labels, ok := series[sel.name]
			if !ok {
				t.Errorf("%s: %s names %s, which no /metrics of the edge, the origin or the worker shows", file, w, sel.name)
				continue
			}
			for _, l := range sel.labels {
				if !labels[l] {
					t.Errorf("%s: %s matches label %q of %s, which that series does not carry", file, w, l, sel.name)
				}
			}
		}
	}
}
