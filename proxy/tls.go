package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/proxyproto"
	"github.com/quic-go/quic-go/http3"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// The HTTPS front door. TLS runs on the goroutine I/O core: an accept loop here
// does each handshake in its own goroutine (bounded by tls.handshake_timeout),
// then hands the connection to a fasthttp.Server of its own that runs the same
// handler as the plaintext listener, so every feature (JWT, rate limits, cache,
// balancer) works alike and ctx.IsTLS() tells the origins X-Forwarded-Proto:
// https. Certificates sit behind an atomic pointer: a reload swaps the set and
// open connections keep the certificate they were handshaken with.

// tlsFront is the state of the TLS listener.
type tlsFront struct {
	s      *Server
	cfg    config.TLS
	log    *zap.Logger
	config *tls.Config
	h1     *fasthttp.Server
	hsts   []byte
	// altSvcP is the Alt-Svc value once ServeHTTP3 runs (h3.go).
	altSvcP atomic.Pointer[[]byte]
	h3      []*http3.Server
	certs   atomic.Pointer[certSet]
	tickets *ticketKeys
	h2      *h2Front // nil with tls.http2 off
	acme    *acmeState

	reloadMu sync.Mutex
	// status of the last reload, for GET /admin/tls.
	lastReload    time.Time
	lastReloadErr string

	stop     chan struct{}
	stopOnce sync.Once
	lnMu     sync.Mutex
	lns      []net.Listener
	closing  atomic.Bool

	handshakes        *metrics.Counter
	resumed           *metrics.Counter
	handshakeFailures *metrics.Counter
	handshakesRefused *metrics.Counter
	// inHandshake counts handshakes in progress (tls.max_handshakes).
	inHandshake    atomic.Int64
	reloads        *metrics.Counter
	reloadFailures *metrics.Counter
}

// loadedCert is one configured certificate as last loaded successfully.
type loadedCert struct {
	conf  config.Certificate
	cert  atomic.Pointer[tls.Certificate] // replaced when an OCSP staple arrives
	names []string
	// certStamp and keyStamp are the files' size and mtime at load, for polling.
	certStamp, keyStamp fileStamp
	loaded              time.Time
	// err is the last failed reload's reason ("" when the files loaded).
	err string
	// ocsp is the staple's state (see ocsp.go).
	ocsp ocspState
}

// certSet is the certificates in force, indexed by name for SNI.
type certSet struct {
	all    []*loadedCert
	byName map[string][]*loadedCert // exact lower-case DNS names and "*.suffix" wildcards
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// modernCiphers are the TLS 1.2 suites offered: ECDHE key exchange and AEAD
// only (TLS 1.3's suites are fixed by crypto/tls and are all AEAD).
var modernCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// setupTLS builds the TLS front when cfg.TLS.Listen is set: loads every
// certificate (a bad one fails start-up), the session ticket keys and the
// HTTPS fasthttp.Server; with tls.redirect_http the plaintext listener answers
// 308 to https.
func (s *Server) setupTLS(cfg config.Config) error {
	if cfg.TLS.Listen == "" {
		return nil
	}
	t := &tlsFront{s: s, cfg: cfg.TLS, log: s.log, stop: make(chan struct{})}
	set := s.metrics.set
	t.handshakes = set.NewCounter(`edge_tls_handshakes_total{resumed="false"}`)
	t.resumed = set.NewCounter(`edge_tls_handshakes_total{resumed="true"}`)
	t.handshakeFailures = set.NewCounter("edge_tls_handshake_failures_total")
	t.handshakesRefused = set.NewCounter("edge_tls_handshakes_refused_total")
	t.reloads = set.NewCounter("edge_tls_certificate_reloads_total")
	t.reloadFailures = set.NewCounter("edge_tls_certificate_reload_failures_total")
	certs, problems := loadCertSet(cfg.TLS.Certificates, nil)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, strings.Join(problems, "; "))
	}
	t.certs.Store(certs)
	t.lastReload = time.Now()
	t.config = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCiphers,
		GetCertificate: t.getCertificate,
		NextProtos:     []string{"http/1.1"},
	}
	if cfg.TLS.HTTP2 {
		t.h2 = newH2Front(s, t.log, t.serveHTTPS, cfg, cfg.TLS.HTTP2Server, s.inlineFor(t.httpsHeaders))
		t.config.NextProtos = []string{"h2", "http/1.1"}
	}
	if h := cfg.TLS.HSTS; h.MaxAge > 0 {
		v := "max-age=" + strconv.FormatInt(int64(h.MaxAge/time.Second), 10)
		if h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
		t.hsts = []byte(v)
	}
	if cfg.TLS.SessionTickets.Disabled {
		t.config.SessionTicketsDisabled = true
	} else {
		tk, err := newTicketKeys(cfg, t.config, s.log, set)
		if err != nil {
			return err
		}
		t.tickets = tk
	}
	t.h1 = s.newPublicServer(cfg, t.serveHTTPS)
	// One TLS record and one write per answer up to 16 KiB (a storefront
	// page), as nginx's ssl_buffer_size 16k: fasthttp's 4 KiB writer would
	// split header and body into two records and two syscalls, and Go's
	// dynamic record sizing would cut the first 128 KB of every connection
	// into ~1.2 KB records, one syscall each (measured in make bench's tls
	// scenario). Costs 12 KiB more per open HTTPS/1.1 connection.
	t.h1.WriteBufferSize = tlsRecordBuffer
	t.config.DynamicRecordSizingDisabled = true
	if cfg.TLS.RedirectHTTP {
		_, port, _ := net.SplitHostPort(cfg.TLS.Listen)
		s.public.Handler = redirectToHTTPS(port)
	}
	if len(cfg.TLS.ACME.Domains) > 0 {
		h, err := t.setupACME(cfg, s.public.Handler)
		if err != nil {
			return err
		}
		s.public.Handler = h
	}
	s.tls = t
	go t.background()
	return nil
}

// serveHTTPS is the HTTPS listeners' handler: the public handler plus HSTS.
func (t *tlsFront) serveHTTPS(ctx *fasthttp.RequestCtx) {
	t.s.handle(ctx)
	t.httpsHeaders(ctx)
}

// httpsHeaders adds what every HTTPS answer carries (HSTS, Alt-Svc).
func (t *tlsFront) httpsHeaders(ctx *fasthttp.RequestCtx) {
	if t.hsts != nil {
		ctx.Response.Header.SetCanonical(headerHSTS, t.hsts)
	}
	if alt := t.altSvcP.Load(); alt != nil {
		ctx.Response.Header.SetCanonical(headerAltSvc, *alt)
	}
}

var (
	headerHSTS   = []byte("Strict-Transport-Security")
	headerAltSvc = []byte("Alt-Svc")
)

// redirectToHTTPS answers every plaintext request with 308 to the same host
// and target over https (port is the TLS listener's; 443 is left out).
func redirectToHTTPS(port string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		host := string(ctx.Request.Header.Host())
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !validRedirectHost(host) {
			writeError(ctx, fasthttp.StatusBadRequest, "a Host header is required for the redirect to https")
			return
		}
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = "[" + host + "]"
		}
		loc := "https://" + host
		if port != "443" && port != "" {
			loc += ":" + port
		}
		// The URI's origin-form ("/path?query"), whatever form the target had.
		loc += string(ctx.URI().RequestURI())
		ctx.Response.Header.Set("Location", loc)
		ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
	}
}

// validRedirectHost accepts a DNS name or an IP address (IPv6 without
// brackets, as SplitHostPort leaves it): nothing that could end the authority.
func validRedirectHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// tlsRecordBuffer is the HTTPS/1.1 write buffer: a full TLS record's payload.
const tlsRecordBuffer = 16 << 10

// errUnknownSNI refuses a handshake under tls.strict_sni.
var errUnknownSNI = errors.New("tls: no certificate for the requested server name")

// getCertificate picks the certificate for a ClientHello: the certificates
// whose names match the SNI exactly, then by wildcard, the first of them the
// client supports (so one name can have an ECDSA and an RSA certificate); the
// default (first configured) certificate when nothing matches.
func (t *tlsFront) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if t.acme != nil && t.acme.wants(hello) {
		return t.acme.magic.GetCertificate(hello)
	}
	set := t.certs.Load()
	if set == nil || len(set.all) == 0 {
		return nil, errors.New("no certificate for " + hello.ServerName)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	cands := set.byName[name]
	if len(cands) == 0 {
		if i := strings.IndexByte(name, '.'); i > 0 {
			cands = set.byName["*"+name[i:]]
		}
	}
	if len(cands) == 0 {
		if t.cfg.StrictSNI && name != "" {
			// crypto/tls answers with an internal_error alert and closes.
			return nil, errUnknownSNI
		}
		cands = set.all
	}
	for _, c := range cands {
		if cert := c.cert.Load(); hello.SupportsCertificate(cert) == nil {
			return cert, nil
		}
	}
	return cands[0].cert.Load(), nil
}

// loadCertSet loads every configured pair. A pair that fails keeps its previous
// version from prev (matched by file names) when there is one; problems says
// why each failed.
func loadCertSet(confs []config.Certificate, prev *certSet) (*certSet, []string) {
	set := &certSet{byName: map[string][]*loadedCert{}}
	var problems []string
	for i, cc := range confs {
		lc, err := loadCert(cc)
		if err != nil {
			msg := fmt.Sprintf("tls.certificates[%d] (%s): %v", i, cc.CertFile, err)
			problems = append(problems, msg)
			old := prev.find(cc)
			if old == nil {
				continue
			}
			// Keep serving the old certificate, flagged with the reason.
			// Its stamps become the broken files', so polling retries only
			// when they change again.
			cs, _ := stampOf(cc.CertFile)
			ks, _ := stampOf(cc.KeyFile)
			kept := &loadedCert{conf: old.conf, names: old.names, certStamp: cs, keyStamp: ks, loaded: old.loaded, err: msg}
			kept.cert.Store(old.cert.Load())
			kept.ocsp.copyFrom(&old.ocsp)
			lc = kept
		} else if old := prev.find(cc); old != nil && sameStamps(old, lc) {
			// Unchanged files: keep the loaded certificate and its staple.
			lc = old
			lc.err = ""
		}
		set.all = append(set.all, lc)
		for _, n := range lc.names {
			set.byName[n] = append(set.byName[n], lc)
		}
	}
	if len(set.all) == 0 && prev != nil {
		return prev, problems
	}
	return set, problems
}

func sameStamps(a, b *loadedCert) bool {
	return a.certStamp == b.certStamp && a.keyStamp == b.keyStamp
}

func (set *certSet) find(cc config.Certificate) *loadedCert {
	if set == nil {
		return nil
	}
	for _, c := range set.all {
		if c.conf == cc {
			return c
		}
	}
	return nil
}

// loadCert reads one pair and checks that the key matches and the leaf parses.
func loadCert(cc config.Certificate) (*loadedCert, error) {
	cs, err := stampOf(cc.CertFile)
	if err != nil {
		return nil, err
	}
	ks, err := stampOf(cc.KeyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(cc.CertFile, cc.KeyFile)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	lc := &loadedCert{conf: cc, certStamp: cs, keyStamp: ks, loaded: time.Now()}
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, leaf.DNSNames...), leaf.Subject.CommonName) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n == "" || seen[n] {
			continue
		}
		if n == leaf.Subject.CommonName && len(leaf.DNSNames) > 0 {
			continue // with SANs present, clients ignore the CN
		}
		seen[n] = true
		if strings.HasPrefix(n, "*.") {
			n = n[1:] // "*.shop.test" is stored as "*" + ".shop.test"
			n = "*" + n
		}
		lc.names = append(lc.names, n)
	}
	for _, ip := range leaf.IPAddresses {
		lc.names = append(lc.names, ip.String())
	}
	lc.cert.Store(&cert)
	return lc, nil
}

// ReloadCertificates re-reads the certificate and key files of conf (nil: the
// ones in force). A pair that fails to load keeps its previous certificate; the
// error says why, and is logged, counted (edge_tls_certificate_reload_failures_total)
// and shown by GET /admin/tls. Open connections are not touched.
func (s *Server) ReloadCertificates(conf []config.Certificate) error {
	t := s.tls
	if t == nil {
		return nil
	}
	return t.reload(conf)
}

func (t *tlsFront) reload(conf []config.Certificate) error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	prev := t.certs.Load()
	if conf == nil {
		conf = make([]config.Certificate, 0, len(prev.all))
		for _, c := range prev.all {
			conf = append(conf, c.conf)
		}
	}
	set, problems := loadCertSet(conf, prev)
	t.certs.Store(set)
	t.lastReload = time.Now()
	t.reloads.Inc()
	if len(problems) > 0 {
		t.reloadFailures.Inc()
		t.lastReloadErr = strings.Join(problems, "; ")
		t.log.Error("edge: tls certificate reload failed, keeping the previous certificate", zap.Strings("problems", problems))
		return errors.New(t.lastReloadErr)
	}
	t.lastReloadErr = ""
	t.log.Info("edge: tls certificates reloaded", zap.Int("certificates", len(set.all)))
	return nil
}

// changed reports whether any certificate or key file differs from its load.
func (t *tlsFront) changed() bool {
	for _, c := range t.certs.Load().all {
		// A missing file stamps as zero, as a failed reload records it, so a
		// broken pair is retried only when its files change again.
		cs, _ := stampOf(c.conf.CertFile)
		ks, _ := stampOf(c.conf.KeyFile)
		if cs != c.certStamp || ks != c.keyStamp {
			return true
		}
	}
	return false
}

// background polls the files, refreshes ticket keys and OCSP staples until stop.
func (t *tlsFront) background() {
	poll := t.cfg.ReloadInterval
	var pollC <-chan time.Time
	if poll > 0 {
		tk := time.NewTicker(poll)
		defer tk.Stop()
		pollC = tk.C
	}
	ocspC := make(<-chan time.Time)
	if t.cfg.OCSPStapling {
		tk := time.NewTicker(ocspCheckEvery)
		defer tk.Stop()
		ocspC = tk.C
		t.refreshOCSP()
	}
	var ticketC <-chan time.Time
	if t.tickets != nil {
		tk := time.NewTicker(t.tickets.refreshEvery())
		defer tk.Stop()
		ticketC = tk.C
	}
	for {
		select {
		case <-t.stop:
			return
		case <-pollC:
			if t.changed() {
				_ = t.reload(nil)
				if t.cfg.OCSPStapling {
					t.refreshOCSP()
				}
			}
		case <-ocspC:
			t.refreshOCSP()
		case <-ticketC:
			t.tickets.refresh()
		}
	}
}

// ServeTLS answers HTTPS on ln (a plain TCP listener: the handshake is done
// here) until Shutdown. The TLS listener runs on the goroutine I/O core.
func (s *Server) ServeTLS(ln net.Listener) error {
	t := s.tls
	if t == nil {
		return errors.New("proxy: ServeTLS without tls.listen configured")
	}
	t.lnMu.Lock()
	t.lns = append(t.lns, ln)
	t.lnMu.Unlock()
	q := newConnQueue(ln.Addr())
	go func() { _ = t.h1.Serve(q) }()
	defer q.Close()
	// With proxy_protocol the PROXY header comes before the ClientHello.
	return acceptLoop(s.proxyListener(ln), &t.closing, func(c net.Conn) { t.handshake(c, q) })
}

// acceptLoop accepts from ln and runs handle on a goroutine per connection
// until ln closes (nil when closing is set or ln was closed) or fails. A
// temporary error (out of descriptors) backs off from 5 ms up to 1 s, as
// net/http's server does, rather than spinning.
func acceptLoop(ln net.Listener, closing *atomic.Bool, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go handle(c)
	}
}

// handshake runs the TLS handshake under the handshake timeout and passes the
// connection on by its ALPN protocol.
func (t *tlsFront) handshake(c net.Conn, q *connQueue) {
	if n := t.inHandshake.Add(1); n > int64(t.cfg.MaxHandshakes) {
		t.inHandshake.Add(-1)
		t.handshakesRefused.Inc()
		_ = c.Close()
		return
	}
	tc := tls.Server(c, t.config)
	_ = c.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if pc, ok := c.(*proxyproto.Conn); ok && pc.Header() != nil {
		// No valid PROXY header: closed and counted as such, not as a
		// failed handshake.
		t.inHandshake.Add(-1)
		return
	}
	err := tc.Handshake()
	t.inHandshake.Add(-1)
	if err != nil {
		t.handshakeFailures.Inc()
		// crypto/tls has sent an alert for a bad ClientHello; plain HTTP on
		// the HTTPS port gets no alert (it would not be read), so say it in
		// HTTP, as net/http does.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			_, _ = io.WriteString(re.Conn, plainHTTPOnTLS)
		}
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.DidResume {
		t.resumed.Inc()
	} else {
		t.handshakes.Inc()
	}
	if st.NegotiatedProtocol == acmeTLS1 {
		// A TLS-ALPN-01 validation: the handshake was the answer.
		if t.acme != nil {
			t.acme.answered.Add(1)
		}
		_ = tc.Close()
		return
	}
	if st.NegotiatedProtocol == "h2" && t.h2 != nil {
		t.h2.serve(tc)
		return
	}
	// HTTP/1.1 over TLS passes the same strict framer as the plaintext listener.
	fc := framedTLSConn{Conn: h1.NewConn(tc, t.s.framer), tc: tc}
	if !q.put(fc) {
		_ = tc.Close()
	}
}

// plainHTTPOnTLS answers an HTTP request sent to the HTTPS port.
const plainHTTPOnTLS = "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
	`{"error":"plain HTTP request sent to the HTTPS port"}`

// looksLikeHTTP reports whether the first five bytes of a would-be TLS
// record are the start of an HTTP/1 request.
func looksLikeHTTP(h []byte) bool {
	switch string(h) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE":
		return true
	}
	return false
}

// framedTLSConn is a TLS connection read through the h1 framer that still tells
// fasthttp it is TLS (RequestCtx.IsTLS, hence X-Forwarded-Proto: https).
type framedTLSConn struct {
	*h1.Conn
	tc *tls.Conn
}

func (c framedTLSConn) Handshake() error                     { return c.tc.Handshake() }
func (c framedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// shutdown closes the TLS listeners and drains the HTTPS server.
func (t *tlsFront) shutdown(ctx context.Context) error {
	t.closing.Store(true)
	t.close()
	t.lnMu.Lock()
	for _, ln := range t.lns {
		_ = ln.Close()
	}
	t.lnMu.Unlock()
	err := t.h1.ShutdownWithContext(ctx)
	if t.h2 != nil {
		err = errors.Join(err, t.h2.shutdown(ctx))
	}
	t.lnMu.Lock()
	h3 := t.h3
	t.lnMu.Unlock()
	for _, srv := range h3 {
		err = errors.Join(err, srv.Shutdown(ctx))
	}
	return err
}

// close stops the background work. Safe to call more than once.
func (t *tlsFront) close() {
	t.stopOnce.Do(func() {
		close(t.stop)
		if t.tickets != nil {
			t.tickets.close()
		}
		if t.acme != nil {
			t.acme.close()
		}
	})
}

// connQueue is a net.Listener fed with connections whose handshake is done.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.closed.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// TLSStatus is the body of GET /admin/tls.
type TLSStatus struct {
	Listen         string            `json:"listen"`
	Certificates   []TLSCertStatus   `json:"certificates"`
	LastReload     time.Time         `json:"last_reload"`
	LastReloadErr  string            `json:"last_reload_error,omitempty"`
	SessionTickets *TicketStatus     `json:"session_tickets,omitempty"`
	Handshakes     map[string]uint64 `json:"handshakes"`
	ACME           *ACMEStatus       `json:"acme,omitempty"`
}

// TLSCertStatus is one certificate in GET /admin/tls.
type TLSCertStatus struct {
	CertFile string    `json:"cert_file"`
	KeyFile  string    `json:"key_file"`
	Names    []string  `json:"names"`
	KeyType  string    `json:"key_type"`
	NotAfter time.Time `json:"not_after"`
	LoadedAt time.Time `json:"loaded_at"`
	// Error is why the last reload of this pair failed (the previous
	// certificate is still served); empty when it loaded.
	Error string      `json:"error,omitempty"`
	OCSP  *OCSPStatus `json:"ocsp,omitempty"`
}

// TLSStatus reports the TLS listener's certificates and reload state; nil
// without TLS.
func (s *Server) TLSStatus() *TLSStatus {
	t := s.tls
	if t == nil {
		return nil
	}
	t.reloadMu.Lock()
	out := &TLSStatus{Listen: t.cfg.Listen, LastReload: t.lastReload, LastReloadErr: t.lastReloadErr}
	t.reloadMu.Unlock()
	for _, c := range t.certs.Load().all {
		cert := c.cert.Load()
		st := TLSCertStatus{CertFile: c.conf.CertFile, KeyFile: c.conf.KeyFile, Names: c.names, LoadedAt: c.loaded, Error: c.err}
		if cert.Leaf != nil {
			st.NotAfter = cert.Leaf.NotAfter
			st.KeyType = cert.Leaf.PublicKeyAlgorithm.String()
		}
		if t.cfg.OCSPStapling {
			st.OCSP = c.ocsp.status()
		}
		out.Certificates = append(out.Certificates, st)
	}
	if t.tickets != nil {
		out.SessionTickets = t.tickets.status()
	}
	out.Handshakes = map[string]uint64{"full": t.handshakes.Get(), "resumed": t.resumed.Get(), "failed": t.handshakeFailures.Get(), "refused": t.handshakesRefused.Get()}
	if t.acme != nil {
		out.ACME = t.acme.status(t.cfg.ACME.DirectoryURL)
	}
	return out
}

func (s *Server) adminTLS(ctx *fasthttp.RequestCtx) {
	st := s.TLSStatus()
	if st == nil {
		writeError(ctx, fasthttp.StatusNotFound, "tls is not configured")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, st)
}

// shutdownTLS drains the HTTPS listener; nil without TLS.
func (s *Server) shutdownTLS(ctx context.Context) error {
	if s.tls == nil {
		return nil
	}
	return s.tls.shutdown(ctx)
}
