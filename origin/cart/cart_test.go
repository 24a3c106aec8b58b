package cart

import (
	"errors"
	"testing"

	"github.com/novashop/edge/origin/api"
)

func TestCheckQuantity(t *testing.T) {
	one, zero, big := 1, 0, MaxQuantity+1
	tests := []struct {
		q    *int
		dflt int
		want int
		err  bool
	}{
		{nil, 1, 1, false},
		{nil, 0, 0, true},
		{&one, 0, 1, false},
		{&zero, 1, 0, true},
		{&big, 1, 0, true},
	}
	for i, tt := range tests {
		got, err := checkQuantity(tt.q, tt.dflt)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%d: got %d, %v", i, got, err)
		}
		if err != nil && !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%d: not a 422: %v", i, err)
		}
	}
}

func FuzzAddInput(f *testing.F) {
	for _, s := range []string{`{"product_id":1,"quantity":2}`, `{"product_id":-1}`, `{"quantity":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in AddInput
		if err := api.DecodeBytes(b, &in); err != nil {
			return
		}
		q, err := checkQuantity(in.Quantity, 1)
		if err == nil && (q < 1 || q > MaxQuantity) {
			t.Fatalf("quantity %d accepted", q)
		}
	})
}
