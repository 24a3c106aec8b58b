// Package evloop is the edge's event-driven I/O core: a few event loops, one per
// core, each a goroutine around its own epoll set, that own their client
// connections. Nothing reads before the kernel says there is data, an idle
// keep-alive connection costs a small struct and a table slot (no goroutine, no
// buffer), and timeouts are the loop's own timer wheel instead of one runtime timer
// per connection.
//
// fasthttp stays the HTTP layer: complete requests are parsed by fasthttp into a
// fasthttp.RequestCtx, so the edge's handler pipeline runs unchanged, and the
// response is serialized by fasthttp. What may block (the whole edge handler today:
// Redis, origin fetches, JWKS) runs on a goroutine and resumes the connection on its
// loop through an eventfd wake-up; what cannot block runs inline (Config.Inline).
// Requests whose body is streamed (above Config.StreamAbove, or chunked when
// streaming is on) detach their connection to Config.Fallback, the goroutine core,
// so large uploads keep today's bounded-memory behaviour.
//
// See docs/io-core.md for the design, the choices and the measurements.
package evloop
