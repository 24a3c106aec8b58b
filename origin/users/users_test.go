package users

import (
	"errors"
	"strings"
	"testing"

	"github.com/novashop/edge/origin/api"
)

func TestRegisterValidate(t *testing.T) {
	ok := RegisterInput{Username: "alice_1", Email: "a@b.co", Password: "12345678"}
	tests := []struct {
		mut   func(*RegisterInput)
		field string
	}{
		{func(*RegisterInput) {}, ""},
		{func(in *RegisterInput) { in.Username = "ab" }, "username"},
		{func(in *RegisterInput) { in.Username = "a b c" }, "username"},
		{func(in *RegisterInput) { in.Username = strings.Repeat("a", 151) }, "username"},
		{func(in *RegisterInput) { in.Email = "a@b" }, "email"},
		{func(in *RegisterInput) { in.Email = "a@@b.c" }, "email"},
		{func(in *RegisterInput) { in.Email = "<a>@b.c" }, "email"},
		{func(in *RegisterInput) { in.Password = "1234567" }, "password"},
		{func(in *RegisterInput) { in.Password = strings.Repeat("p", 73) }, "password"},
		{func(in *RegisterInput) { in.City = strings.Repeat("c", 151) }, "city"},
		{func(in *RegisterInput) { in.Address = "\x00" }, "address"},
	}
	for i, tt := range tests {
		in := ok
		tt.mut(&in)
		err := in.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%d: %v", i, err)
			}
			continue
		}
		if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(api.Message(err), tt.field+":") {
			t.Errorf("%d: err %v, want 422 on %s", i, err, tt.field)
		}
	}
}

func FuzzRegisterInput(f *testing.F) {
	for _, s := range []string{`{"username":"alice","email":"a@b.co","password":"12345678"}`, `{"username":1}`, `{"email":"@"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in RegisterInput
		if err := api.DecodeBytes(b, &in); err != nil {
			return
		}
		if err := in.Validate(); err != nil {
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("non-422 %v", err)
			}
			return
		}
		if !validUsername(in.Username) || len(in.Password) < 8 || len(in.Password) > 72 {
			t.Fatalf("accepted %+v", in)
		}
	})
}
