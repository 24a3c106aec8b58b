package targeter

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestTopField(t *testing.T) {
	tests := []struct {
		name, body, field, want string
		ok                      bool
	}{
		{"cursor after results", `{"results":[{"id":1,"next":"inner"}],"next":"abc"}`, "next", `"abc"`, true},
		{"null cursor", `{"results":[],"next":null}`, "next", `null`, true},
		{"number", ` { "id" : 42 , "x":true}`, "id", `42`, true},
		{"object value", `{"a":{"b":[1,{"c":"}"}]},"z":1}`, "a", `{"b":[1,{"c":"}"}]}`, true},
		{"escaped quote in string", `{"a":"x\"next\":1","next":"y"}`, "next", `"y"`, true},
		{"escaped backslash before quote", `{"a":"x\\","next":"y"}`, "next", `"y"`, true},
		{"escaped key", `{"ne\u0078t":"y"}`, "next", `"y"`, true},
		{"last duplicate wins", `{"next":"a","next":"b"}`, "next", `"b"`, true},
		{"missing", `{"results":[]}`, "next", ``, false},
		{"nested only", `{"page":{"next":"a"}}`, "next", ``, false},
		{"empty object", `{}`, "next", ``, false},
		{"array", `["next"]`, "next", ``, false},
		{"truncated", `{"results":[{"id":1}`, "next", ``, false},
		{"truncated string", `{"next":"ab`, "next", ``, false},
		{"missing colon", `{"next" "a"}`, "next", ``, false},
		{"empty", ``, "next", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := topField([]byte(tc.body), tc.field)
			if ok != tc.ok || string(got) != tc.want {
				t.Fatalf("topField(%s, %q) = %q, %v; want %q, %v", tc.body, tc.field, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzTopField checks the scanner against encoding/json on every valid
// object, and that no input makes it panic or read out of range.
func FuzzTopField(f *testing.F) {
	for _, s := range []string{
		`{"results":[{"id":1}],"next":"abc"}`, `{"next":null}`, `{"a":"\\\"","next":1.5e3}`,
		`{"ne\u0078t":[{}],"b":{"next":2}}`, `{}`, `[]`, `{"next":`, `"x"`,
	} {
		f.Add([]byte(s), "next")
	}
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		got, ok := topField(b, name)
		if !utf8.Valid(b) || !utf8.ValidString(name) {
			return // encoding/json rewrites invalid UTF-8 in names
		}
		var doc map[string]json.RawMessage
		if !json.Valid(b) || json.Unmarshal(b, &doc) != nil || doc == nil {
			return
		}
		want, wok := doc[name]
		if ok != wok {
			t.Fatalf("topField(%q, %q) ok = %v, encoding/json says %v", b, name, ok, wok)
		}
		if ok && !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Fatalf("topField(%q, %q) = %q, encoding/json says %q", b, name, got, want)
		}
	})
}

func BenchmarkTopFieldProductList(b *testing.B) {
	type product struct {
		ID          int    `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Price       string `json:"price"`
	}
	page := struct {
		Results []product `json:"results"`
		Next    string    `json:"next"`
	}{Next: "eyJvIjoiIiwiaWQiOjIzfQ"}
	for i := range 48 {
		page.Results = append(page.Results, product{i, "Bright Desk", "A blue bright desk built to last. Model 1002.", "1511.28"})
	}
	body, _ := json.Marshal(page)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := topField(body, "next"); !ok {
			b.Fatal("no next")
		}
	}
}
