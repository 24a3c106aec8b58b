package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Error classes. Each maps to one HTTP status in Status; domain errors wrap
// one of them so the mapping lives in one place.
var (
	// ErrMalformed: the request body or a parameter cannot be parsed (400).
	ErrMalformed = errors.New("api: malformed request")
	// ErrUnauthenticated: no valid access token (401).
	ErrUnauthenticated = errors.New("api: authentication required")
	// ErrForbidden: the caller may not do this (403).
	ErrForbidden = errors.New("api: forbidden")
	// ErrNotFound: no such resource, or not the caller's (404).
	ErrNotFound = errors.New("api: not found")
	// ErrConflict: the request conflicts with the current state (409).
	ErrConflict = errors.New("api: conflict")
	// ErrTooLarge: the body is over MaxBody (413).
	ErrTooLarge = errors.New("api: request body too large")
	// ErrMediaType: the body is not application/json (415).
	ErrMediaType = errors.New("api: unsupported media type")
	// ErrInvalid: the body parsed but a field fails validation (422).
	ErrInvalid = errors.New("api: validation failed")
	// ErrTooManyRequests: the caller must wait before trying again (429,
	// with Retry-After when the error says how long; see TooMany).
	ErrTooManyRequests = errors.New("api: too many requests")
	// ErrUnavailable: a dependency is down or an error was injected (503).
	ErrUnavailable = errors.New("api: service unavailable")
)

// Status maps an error to its HTTP status; unknown errors are 500.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrMalformed):
		return fasthttp.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return fasthttp.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, ErrConflict):
		return fasthttp.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMediaType):
		return fasthttp.StatusUnsupportedMediaType
	case errors.Is(err, ErrInvalid):
		return fasthttp.StatusUnprocessableEntity
	case errors.Is(err, ErrTooManyRequests):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusInternalServerError
}

// userError is an error whose message is meant for the client.
type userError struct {
	class error
	msg   string
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.class }

// Errorf makes a client-facing error of the given class.
func Errorf(class error, format string, args ...any) error {
	return &userError{class: class, msg: fmt.Sprintf(format, args...)}
}

// Invalid is a 422 naming the field that failed.
func Invalid(field, reason string) error {
	return &userError{class: ErrInvalid, msg: field + ": " + reason}
}

// NotFound is a 404 naming what was not found.
func NotFound(what string) error {
	return &userError{class: ErrNotFound, msg: what + " not found"}
}

// retryError is a 429 that knows when the caller may try again.
type retryError struct {
	userError
	wait time.Duration
}

// TooMany is a 429 whose answer carries Retry-After: wait (RFC 9110 §10.2.3,
// RFC 6585 §4).
func TooMany(wait time.Duration, msg string) error {
	return &retryError{userError: userError{class: ErrTooManyRequests, msg: msg}, wait: wait}
}

// RetryAfter returns the wait a TooMany error carries.
func RetryAfter(err error) (time.Duration, bool) {
	var re *retryError
	if errors.As(err, &re) {
		return re.wait, true
	}
	return 0, false
}

// SetRetryAfter stamps Retry-After in whole seconds, rounded up (never 0,
// which would invite an immediate retry), when err carries a wait.
func SetRetryAfter(ctx *fasthttp.RequestCtx, err error) {
	wait, ok := RetryAfter(err)
	if !ok {
		return
	}
	secs := int64((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.FormatInt(secs, 10))
}

// Message is the client-facing text of err. Internal errors never leak
// their details (they may contain SQL or addresses); they are logged instead.
func Message(err error) string {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.msg
	}
	var re *retryError
	if errors.As(err, &re) {
		return re.msg
	}
	switch Status(err) {
	case fasthttp.StatusInternalServerError:
		return "internal error"
	}
	return err.Error()
}

// WriteError answers err as {"error": "..."} with its status. 401 answers
// carry WWW-Authenticate (RFC 6750 §3); 5xx are logged.
func WriteError(ctx *fasthttp.RequestCtx, log *zap.Logger, err error) {
	st := Status(err)
	if st == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="novashop"`)
	}
	SetRetryAfter(ctx, err)
	if st >= 500 && log != nil {
		log.Error("request failed", zap.ByteString("path", ctx.Path()), zap.Int("status", st), zap.Error(err))
	}
	WriteErrorMessage(ctx, st, Message(err))
}

// WriteErrorMessage answers {"error": msg} with status st.
func WriteErrorMessage(ctx *fasthttp.RequestCtx, st int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, CacheControlPrivate)
	ctx.SetContentType(ContentTypeJSON)
	ctx.SetStatusCode(st)
	ctx.SetBody(b)
}
