package proxy

import (
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/evloop"
)

// newLoops builds the event-loop core (io: eventloop) over the same handler,
// parse-error answers and limits as the goroutine core. Every request is handed
// off to a goroutine for now: the handler may block on Redis, the origins or
// JWKS. A request whose body streams (limits.stream_request_bytes) detaches its
// connection to the goroutine core, s.public.
func (s *Server) newLoops(cfg config.Config) *evloop.Server {
	return evloop.New(evloop.Config{
		Handler:        s.handle,
		ErrorHandler:   s.handleParseError,
		Fallback:       s.public.ServeConn,
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		StreamAbove:    cfg.Limits.StreamRequestBytes,
		ReadTimeout:    cfg.Timeouts.Read,
		WriteTimeout:   cfg.Timeouts.Write,
		IdleTimeout:    cfg.Timeouts.Idle,
		Logger:         zapPrintf{s.log},
	})
}
