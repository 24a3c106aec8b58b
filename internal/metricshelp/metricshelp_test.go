package metricshelp_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/internal/metricshelp"
	"github.com/novashop/edge/internal/testenv"
)

func TestWriteCompletesHelpAndType(t *testing.T) {
	tests := []struct {
		name, in, want string
		help           metricshelp.Help
	}{
		{"own help", "# HELP a_total\n# TYPE a_total counter\na_total 1\n",
			"# HELP a_total Things.\n# TYPE a_total counter\na_total 1\n", metricshelp.Help{"a_total": "Things."}},
		{"runtime help", "# HELP go_goroutines\n# TYPE go_goroutines gauge\ngo_goroutines 7\n",
			"# HELP go_goroutines Number of goroutines that exist.\n# TYPE go_goroutines gauge\ngo_goroutines 7\n", nil},
		{"unknown family keeps its empty help", "# HELP zz\n# TYPE zz gauge\nzz 1\n",
			"# HELP zz\n# TYPE zz gauge\nzz 1\n", nil},
		{"help already written is kept", "# HELP a_total Mine.\na_total 1\n",
			"# HELP a_total Mine.\na_total 1\n", metricshelp.Help{"a_total": "Other."}},
		{"escaping", "# HELP a\n", "# HELP a back\\\\slash\\nnewline\n", metricshelp.Help{"a": "back\\slash\nnewline"}},
		{"type corrected", "# TYPE process_io_read_bytes_total gauge\n# TYPE go_cpu_count gauge\n",
			"# TYPE process_io_read_bytes_total counter\n# TYPE go_cpu_count untyped\n", nil},
		{"last line without newline", "# HELP a\na 1", "# HELP a A.\na 1", metricshelp.Help{"a": "A."}},
		{"samples and labels untouched", "a{x=\"# HELP b\"} 1\n", "a{x=\"# HELP b\"} 1\n", metricshelp.Help{"b": "B."}},
		{"empty", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			metricshelp.Write(&out, tt.help, func(w io.Writer) { io.WriteString(w, tt.in) })
			if out.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}

// TestRuntimeSeriesPassPromtool: the library's Go runtime and process series,
// as this process writes them, get a HELP text each and pass `promtool check
// metrics`, so a library upgrade that adds a series fails here first.
func TestRuntimeSeriesPassPromtool(t *testing.T) {
	var out bytes.Buffer
	metricshelp.Write(&out, nil, metrics.WriteProcessMetrics)
	body := out.Bytes()
	if !bytes.Contains(body, []byte("# TYPE go_goroutines gauge")) {
		t.Fatalf("no # TYPE lines: is ExposeMetadata on?\n%s", body)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "# HELP ") && strings.Count(line, " ") < 3 {
			t.Errorf("no help text: %q", line)
		}
	}
	testenv.CheckMetrics(t, "process metrics", body)
}

func TestFamilies(t *testing.T) {
	got := metricshelp.Families([]byte("# HELP a A.\n# TYPE a counter\na 1\n# TYPE b_seconds histogram\nb_seconds_bucket{le=\"1\"} 0\n"))
	if strings.Join(got, ",") != "a,b_seconds" {
		t.Errorf("Families = %v", got)
	}
}
