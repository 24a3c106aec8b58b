package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// encodingJSON is what api.WriteJSON writes for v, minus the newline.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnl\nret\rbs\bff\f", "\x00\x01\x1f\x7f",
		"<b>&amp;</b>", "é ü 日本", "line\u2028para\u2029", "bad \xff utf8 \xc3", "emoji 😀"} {
		got := appendJSONString(nil, []byte(s))
		if want := encodingJSON(t, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "\xff", "<>&", "\x00\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, []byte(s))
		if want := encodingJSON(t, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func TestAppendProductMatchesEncodingJSON(t *testing.T) {
	r := rawRow{id: 42, priceCents: 12999, stock: 7, categoryID: 3, name: []byte(`Laptop "Pro" <15">`),
		description: []byte("line\none"), categoryName: []byte("Computers & more"), image: []byte("/img/42.svg")}
	p := Product{ID: 42, Name: string(r.name), Description: string(r.description), Price: "129.99", Stock: 7,
		Category: CategoryRef{ID: 3, Name: string(r.categoryName)}, Image: string(r.image)}
	if got, want := appendProduct(nil, &r), encodingJSON(t, p); !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestAppendCursorMatchesMarshal: the hand-built cursor is the base64url of
// json.Marshal(c), as EncodeCursor always made it.
func TestAppendCursorMatchesMarshal(t *testing.T) {
	for _, c := range []Cursor{
		{Ordering: OrderID, ID: 1},
		{Ordering: OrderPrice, ID: 99, Price: 12999},
		{Ordering: OrderPriceDsc, ID: 5, Price: 0},
		{Ordering: OrderName, ID: 7, Name: `Tom & "Jerry" <3>`},
		{Ordering: OrderNewest, ID: 8, Created: 1_700_000_000_123_456},
		{Ordering: "unknown", ID: 9},
	} {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := EncodeCursor(c), base64.RawURLEncoding.EncodeToString(raw); got != want {
			t.Errorf("%+v: got %s, want %s", c, got, want)
		}
	}
}
