package cachekeys

import (
	"reflect"
	"testing"
)

func TestTagNames(t *testing.T) {
	cases := []struct{ got, want string }{
		{TagProduct(42), "product:42"},
		{TagCategory(7), "category:7"},
		{TagReviews(42), "reviews:42"},
		{TagVersionKey(TagProduct(1)), "novashop:tagv:product:1"},
		{JoinTags(TagProducts, TagProduct(3)), "products,product:3"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestParseTags(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"products", []string{"products"}},
		{" products , product:3 ,,", []string{"products", "product:3"}},
		{"bad tag,ok", []string{"ok"}},
		{"a\r\nb,c", []string{"c"}},
	}
	for _, c := range cases {
		if got := ParseTags(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseTags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzParseTags(f *testing.F) {
	f.Add("products, product:1")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, s string) {
		tags := ParseTags(s)
		if len(tags) > MaxTags {
			t.Fatalf("%d tags", len(tags))
		}
		for _, tg := range tags {
			if !ValidTag(tg) {
				t.Fatalf("invalid tag %q returned", tg)
			}
		}
	})
}
