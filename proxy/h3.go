package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// HTTP/3 over QUIC on the TLS listener's port over UDP (quic-go). Its
// requests go through the same bridge as HTTP/2 (h2Front.ServeHTTP) into the
// one fasthttp handler; HTTPS answers over TCP advertise it with Alt-Svc once
// ServeHTTP3 runs. The QUIC handshake takes the live tls.Config per
// connection, so certificate reloads and ticket key rotations apply to it.

// ServeHTTP3 answers HTTP/3 on pc (UDP, normally the TLS listener's port)
// until Shutdown, and from now on advertises it with Alt-Svc on HTTPS answers.
func (s *Server) ServeHTTP3(pc net.PacketConn) error {
	t := s.tls
	if t == nil || t.h2 == nil {
		return errors.New("proxy: ServeHTTP3 needs tls.listen and tls.http2 (its bridge)")
	}
	live := t.config
	srv := &http3.Server{
		Handler: t.h2,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				return live, nil
			},
		},
		QUICConfig: &quic.Config{
			MaxIncomingStreams:    h2MaxStreams,
			MaxIncomingUniStreams: 16,
			MaxIdleTimeout:        t.s.rt.Load().cfg.Timeouts.Idle,
			HandshakeIdleTimeout:  t.cfg.HandshakeTimeout,
		},
		MaxHeaderBytes: t.s.rt.Load().cfg.Limits.MaxHeaderBytes,
		IdleTimeout:    t.s.rt.Load().cfg.Timeouts.Idle,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			st := c.ConnectionState().TLS
			return context.WithValue(ctx, connKey{}, &h2Conn{laddr: asTCP(c.LocalAddr()), raddr: asTCP(c.RemoteAddr()), st: &st})
		},
	}
	port := 0
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		port = a.Port
	}
	alt := []byte(`h3=":` + strconv.Itoa(port) + `"; ma=86400`)
	t.altSvcP.Store(&alt)
	t.lnMu.Lock()
	t.h3 = append(t.h3, srv)
	t.lnMu.Unlock()
	err := srv.Serve(pc)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) || t.closing.Load() {
		return nil
	}
	return err
}

// asTCP turns a UDP address into the TCP one fasthttp's RemoteIP reads (it
// knows only *net.TCPAddr), so rate limits and X-Forwarded-For see the client.
func asTCP(a net.Addr) net.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return &net.TCPAddr{IP: u.IP, Port: u.Port, Zone: u.Zone}
	}
	return a
}
