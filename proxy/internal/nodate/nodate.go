// Package nodate sets fasthttp.ResponseHeader's unexported noDefaultDate
// flag, for the edge's answers written by something other than
// fasthttp.Server (the event loop, the cache's pre-serialized hit heads).
//
// fasthttp.Server sets that flag on every response when its NoDefaultDate
// option is on, but offers no setter; without it Response.Write replaces any
// Date the handler set with its own clock's. One place for the unsafe write,
// shared by proxy/evloop and proxy/cache.
package nodate

import (
	"reflect"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// offset is found once at start; a fasthttp version without the field
// panics here (and in the packages' tests) instead of silently sending the
// wrong Date.
var offset = func() uintptr {
	f, ok := reflect.TypeOf(fasthttp.ResponseHeader{}).FieldByName("noDefaultDate")
	if !ok || f.Type.Kind() != reflect.Bool {
		panic("nodate: fasthttp.ResponseHeader has no bool noDefaultDate field; update proxy/internal/nodate")
	}
	return f.Offset
}()

// Set does for h what fasthttp.Server does with NoDefaultDate.
func Set(h *fasthttp.ResponseHeader) {
	*(*bool)(unsafe.Add(unsafe.Pointer(h), offset)) = true
}
