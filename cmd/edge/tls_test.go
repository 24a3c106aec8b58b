package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestTLSFlags(t *testing.T) {
	env := map[string]string{"EDGE_TLS_LISTEN": "127.0.0.1:8443"}
	getenv := func(k string) string { return env[k] }
	base := []string{"--upstream", "http://127.0.0.1:1"}
	cases := []struct {
		name      string
		args      []string
		wantErr   bool
		listen    string
		wantCerts int
	}{
		{"env listen, one pair", []string{"--tls-cert", "a.crt", "--tls-key", "a.key"}, false, "127.0.0.1:8443", 1},
		{"flag beats env, two pairs", []string{"--tls-listen", "127.0.0.1:9443", "--tls-cert", "a.crt", "--tls-key", "a.key", "--tls-cert", "b.crt", "--tls-key", "b.key"}, false, "127.0.0.1:9443", 2},
		{"unpaired", []string{"--tls-cert", "a.crt"}, true, "", 0},
		{"listen without certificates", nil, true, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseFlags(append(append([]string{}, base...), tc.args...), &syncBuffer{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(f, getenv)
			if tc.wantErr {
				if exitCode(err) != 2 {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLS.Listen != tc.listen || len(cfg.TLS.Certificates) != tc.wantCerts || cfg.TLS.Certificates[0].KeyFile != "a.key" {
				t.Fatalf("tls = %+v", cfg.TLS)
			}
		})
	}
}

// writeSelfSigned writes an ECDSA certificate for 127.0.0.1 with subject cn.
func writeSelfSigned(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeTLSReloadOnSIGHUP runs the command with --tls-listen and a pair of
// files: HTTPS forwards, and after the files change SIGHUP serves the new one.
func TestServeTLSReloadOnSIGHUP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(string(ctx.Request.Header.Peek("X-Forwarded-Proto")))
	}}
	go origin.Serve(ln)     //nolint:errcheck
	defer origin.Shutdown() //nolint:errcheck
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "e.crt"), filepath.Join(dir, "e.key")
	writeSelfSigned(t, cert, key, "one")
	file := filepath.Join(dir, "edge.yaml")
	// Polling off: only SIGHUP reloads here.
	y := fmt.Sprintf("listen: '127.0.0.1:0'\nadmin_listen: '127.0.0.1:0'\nupstreams: [{url: 'http://%s'}]\naccess_log: {enabled: false}\ntls: {reload_interval: -1s}\n", ln.Addr())
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", file, "--tls-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key}, &out, &errOut)
	}()
	re := regexp.MustCompile(`https on (\S+),`)
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not start: %s %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cn := func() string {
		c := &fasthttp.Client{TLSConfig: &tls.Config{InsecureSkipVerify: true}}
		var req fasthttp.Request
		var resp fasthttp.Response
		req.SetRequestURI("https://" + addr + "/")
		if err := c.DoTimeout(&req, &resp, 5*time.Second); err != nil || string(resp.Body()) != "https" {
			t.Fatalf("GET over https: %v %q", err, resp.Body())
		}
		tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "one" {
		t.Fatalf("certificate %q", got)
	}
	writeSelfSigned(t, cert, key, "two")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for cn() != "two" {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload the certificate: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
