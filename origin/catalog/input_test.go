package catalog

import (
	"errors"
	"testing"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/money"
)

func TestProductInputValidate(t *testing.T) {
	tests := []struct {
		body   string
		create bool
		field  string
	}{
		{`{"name":"Lamp","price":"9.99","category_id":1}`, true, ""},
		{`{"name":"Lamp","price":9.99,"stock":3,"category_id":1}`, true, ""},
		{`{"price":"10"}`, false, ""},
		{`{"price":"9.999","name":"x","category_id":1}`, true, "price"},
		{`{"name":"Lamp","category_id":1}`, true, "price"},
		{`{"name":"Lamp","price":"1"}`, true, "category_id"},
		{`{"name":"","price":"1","category_id":1}`, true, "name"},
		{`{"stock":1000001}`, false, "stock"},
		{`{"category_id":0}`, false, "category_id"},
		{`{"name":" "}`, false, "name"},
	}
	for _, tt := range tests {
		var in ProductInput
		if err := api.DecodeBytes([]byte(tt.body), &in); err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		_, err := in.validate(tt.create)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if !errors.Is(err, api.ErrInvalid) || api.Message(err)[:len(tt.field)] != tt.field {
			t.Errorf("%s: err %v, want 422 on %s", tt.body, err, tt.field)
		}
	}
}

func FuzzProductInput(f *testing.F) {
	for _, s := range []string{`{"name":"Lamp","price":"9.99","category_id":1}`, `{"price":1e308}`, `{"stock":-1}`, `{"price":"-0"}`, `{"name":"\ud800"}`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, create bool) {
		var in ProductInput
		if err := api.DecodeBytes(b, &in); err != nil {
			return
		}
		cents, err := in.validate(create)
		if err != nil {
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("non-422 %v", err)
			}
			return
		}
		if cents < 0 || cents > money.MaxCents {
			t.Fatalf("cents %d", cents)
		}
		if in.Stock != nil && (*in.Stock < 0 || *in.Stock > MaxStock) {
			t.Fatalf("stock %d", *in.Stock)
		}
	})
}
