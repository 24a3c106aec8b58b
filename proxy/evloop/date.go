package evloop

import (
	"github.com/novashop/edge/proxy/internal/nodate"
	"github.com/valyala/fasthttp"
)

// setNoDefaultDate: see proxy/internal/nodate.
func setNoDefaultDate(h *fasthttp.ResponseHeader) { nodate.Set(h) }
