package evloop

import (
	"reflect"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// noDefaultDateOffset is the offset of fasthttp.ResponseHeader's unexported
// noDefaultDate flag. fasthttp.Server sets that flag on every response when its
// NoDefaultDate option is on, but offers no setter for servers of other kinds,
// and without it Response.Write replaces any Date the handler set by its own
// clock. Found once at start; a fasthttp version without the field panics here
// (and in TestNoDefaultDate) instead of silently sending the wrong Date.
var noDefaultDateOffset = func() uintptr {
	f, ok := reflect.TypeOf(fasthttp.ResponseHeader{}).FieldByName("noDefaultDate")
	if !ok || f.Type.Kind() != reflect.Bool {
		panic("evloop: fasthttp.ResponseHeader has no bool noDefaultDate field; update setNoDefaultDate")
	}
	return f.Offset
}()

// setNoDefaultDate does for h what fasthttp.Server does with NoDefaultDate.
func setNoDefaultDate(h *fasthttp.ResponseHeader) {
	*(*bool)(unsafe.Add(unsafe.Pointer(h), noDefaultDateOffset)) = true
}
