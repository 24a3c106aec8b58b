package proxy

import (
	"strings"
	"testing"
)

// TestRequestOnCountsInScrape: answers counted on stripes (RequestOn, the
// hit path's) show in edge_requests_total exactly once, beside those counted
// by Request, whatever the hint, scrape after scrape.
func TestRequestOnCountsInScrape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codes []int
		want  []string
	}{
		{"hot statuses", []int{200, 200, 304, 200}, []string{`edge_requests_total{status="200"} 3`, `edge_requests_total{status="304"} 1`}},
		{"others go straight to their series", []int{404, 200, 503, 404}, []string{`edge_requests_total{status="404"} 2`, `edge_requests_total{status="503"} 1`, `edge_requests_total{status="200"} 1`}},
		{"mixed with Request", nil, []string{`edge_requests_total{status="200"} 2`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics()
			for i, c := range tc.codes {
				m.RequestOn(c, uint(i*5))
			}
			if tc.codes == nil {
				m.RequestOn(200, 3)
				m.Request(200)
			}
			for scrape := 0; scrape < 2; scrape++ {
				var b strings.Builder
				m.WritePrometheus(&b)
				for _, w := range tc.want {
					if !strings.Contains(b.String(), w+"\n") {
						t.Fatalf("scrape %d lacks %s:\n%s", scrape, w, b.String())
					}
				}
			}
		})
	}
}
