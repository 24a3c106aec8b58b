package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// MaxBody bounds request bodies (1 MiB); the server enforces it on the wire
// and Decode again for handlers reached in-process.
const MaxBody = 1 << 20

// ContentTypeJSON is the type of every JSON answer.
const ContentTypeJSON = "application/json; charset=utf-8"

// Decode parses the JSON body into v strictly: the media type must be
// application/json (RFC 8259 §11), the body at most MaxBody, one value with
// no unknown fields.
func Decode(ctx *fasthttp.RequestCtx, v any) error {
	ct := string(ctx.Request.Header.ContentType())
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
		return Errorf(ErrMediaType, "Content-Type must be application/json")
	}
	body := ctx.Request.Body()
	if len(body) > MaxBody {
		return Errorf(ErrTooLarge, "request body is larger than 1 MiB")
	}
	return DecodeBytes(body, v)
}

func isJSONSuffix(mt string) bool {
	return len(mt) > 5 && mt[len(mt)-5:] == "+json"
}

// DecodeBytes is Decode without the HTTP checks; fuzz tests drive it.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(ErrMalformed, "request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Invalid(te.Field, "must be a JSON "+jsonKind(te.Type.Kind().String()))
		}
		return Errorf(ErrMalformed, "malformed JSON: %s", trimJSONErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(ErrMalformed, "malformed JSON: trailing data after the object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "ptr":
		return "value of the right type"
	}
	return k
}

func trimJSONErr(err error) string {
	s := err.Error()
	s = trimPrefix(s, "json: ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// WriteJSON answers v as JSON with status st.
func WriteJSON(ctx *fasthttp.RequestCtx, st int, v any) {
	ctx.SetContentType(ContentTypeJSON)
	ctx.SetStatusCode(st)
	enc := json.NewEncoder(ctx)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		ctx.ResetBody()
		WriteErrorMessage(ctx, fasthttp.StatusInternalServerError, "internal error")
	}
}

// WriteJSONAppend answers st with the JSON that fill appends to a pooled
// scratch buffer (fill must not keep it), so a hot handler that appends its
// JSON by hand answers without allocating: the scratch buffer and the
// response's body buffer both come from pools and the body is one copy.
// (Swapping the scratch buffer into the response would spare the copy but
// feed the pool the response's fresh, empty buffers, which teaches
// bytebufferpool's size calibration to drop every real-sized one.) The
// newline matches WriteJSON's (json.Encoder's) output. On error nothing is
// written and the error is returned.
func WriteJSONAppend(ctx *fasthttp.RequestCtx, st int, fill func(dst []byte) ([]byte, error)) error {
	bb := bytebufferpool.Get()
	defer bytebufferpool.Put(bb)
	b, err := fill(bb.B[:0])
	bb.B = b
	if err != nil {
		return err
	}
	bb.B = append(bb.B, '\n')
	ctx.SetContentType(ContentTypeJSON)
	ctx.SetStatusCode(st)
	ctx.SetBody(bb.B)
	return nil
}
