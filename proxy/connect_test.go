package proxy

import "testing"

func TestConnectTarget(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"example.com:443", true},
		{"host:25", true},
		{"0-home0.netscape.com:443", true},
		{"HOME0.NETSCAPE.COM:443", true},
		{"127.0.0.1:8080", true},
		{"[::1]:443", true},
		{"[2001:db8::1]:65535", true},
		{"domain.example", false}, // gunicorn invalid/method_02: no port
		{"example.com:", false},
		{":443", false},
		{"example.com:44a", false},
		{"example.com:123456", false},
		{"[::1]", false},
		{"[::1:443", false},
		{"[]:443", false},
		{"exa mple.com:443", false},
		{"user@example.com:443", false},
		{"example.com/x:443", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := connectTarget([]byte(tt.target)); got != tt.ok {
			t.Errorf("connectTarget(%q) = %v, want %v", tt.target, got, tt.ok)
		}
	}
}

// FuzzConnectTarget: never panics, and an accepted target always has a port.
func FuzzConnectTarget(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:443", "a", ":", "[:", "]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if connectTarget([]byte(s)) {
			i := len(s) - 1
			for i >= 0 && s[i] != ':' {
				i--
			}
			if i <= 0 || i == len(s)-1 {
				t.Fatalf("accepted %q without host:port", s)
			}
		}
	})
}

func TestAbsoluteTarget(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"http://example.com/foo?q=1", true},
		{"https://example.com/foo", true},
		{"http://[::1]:8080/foo", true},
		{"http://user:pass@example.com:8080/foo?q=1", true},
		{"scheme+ext://user+ext:password!@[::1]:8000/path?query#frag", true}, // gunicorn valid/041
		{"http://example.com", true},
		{"http://example.com:/x", true},
		{"s://]ufd/:", false}, // gunicorn invalid/016
		{"http://", false},
		{"http://[::1/x", false},
		{"http://[::1]x/", false},
		{"http://exa[mple.com/", false},
		{"http://example.com:80a/", false},
		{"http:/example.com/", false},
		{"1http://example.com/", false},
		{"http://us er@example.com/", false},
	}
	for _, tt := range tests {
		if got := absoluteTarget([]byte(tt.target)); got != tt.ok {
			t.Errorf("absoluteTarget(%q) = %v, want %v", tt.target, got, tt.ok)
		}
	}
}

// FuzzAbsoluteTarget: never panics; an accepted target starts with "scheme://".
func FuzzAbsoluteTarget(f *testing.F) {
	for _, s := range []string{"http://a/", "s://]ufd/:", "a://[", "a://@", "a://[::1]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if absoluteTarget([]byte(s)) {
			i := 0
			for i < len(s) && s[i] != ':' {
				i++
			}
			if i == 0 || len(s) < i+3 || s[i:i+3] != "://" {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}
