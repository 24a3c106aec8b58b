package reviews

import (
	"errors"
	"strings"
	"testing"

	"github.com/novashop/edge/origin/api"
)

func TestInputValidate(t *testing.T) {
	tests := []struct {
		body  string
		field string
	}{
		{`{"rating":1}`, ""},
		{`{"rating":5,"text":"great"}`, ""},
		{`{"text":"no rating"}`, "rating"},
		{`{"rating":0}`, "rating"},
		{`{"rating":6}`, "rating"},
		{`{"rating":3,"text":"` + strings.Repeat("x", MaxText+1) + `"}`, "text"},
	}
	for _, tt := range tests {
		var in Input
		if err := api.DecodeBytes([]byte(tt.body), &in); err != nil {
			t.Fatalf("%.40s: %v", tt.body, err)
		}
		err := in.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%.40s: %v", tt.body, err)
			}
			continue
		}
		if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(api.Message(err), tt.field) {
			t.Errorf("%.40s: %v, want 422 on %s", tt.body, err, tt.field)
		}
	}
}

func FuzzInput(f *testing.F) {
	for _, s := range []string{`{"rating":5,"text":"x"}`, `{"rating":1.5}`, `{"rating":"5"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Input
		if err := api.DecodeBytes(b, &in); err != nil {
			return
		}
		if err := in.Validate(); err == nil && (*in.Rating < 1 || *in.Rating > 5) {
			t.Fatalf("accepted rating %d", *in.Rating)
		}
	})
}
