// Package apierr is the error envelope every Skyflow endpoint answers with,
// wire-compatible with the Skyflow Data API v1:
//
//	{"error":{"grpc_code":5,"http_code":404,"http_status":"Not Found","message":"…","details":[]}}
//
// Messages are for people: they say what was wrong and how to fix it, and
// never echo a sensitive value.
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error with the HTTP status it is answered with.
type Error struct {
	HTTPCode int
	Message  string
	Details  []any
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.HTTPCode, http.StatusText(e.HTTPCode), e.Message)
}

// StatusCode is the HTTP status the error is answered with.
func (e *Error) StatusCode() int { return e.HTTPCode }

// New makes an error with the given HTTP status and message.
func New(httpCode int, format string, args ...any) *Error {
	return &Error{HTTPCode: httpCode, Message: fmt.Sprintf(format, args...)}
}

// The constructors name the gRPC status, as the Skyflow API does.

// InvalidArgument is a 400: the request is malformed or a value is wrong.
func InvalidArgument(format string, args ...any) *Error {
	return New(http.StatusBadRequest, format, args...)
}

// Unauthenticated is a 401: no credential, or one that is not valid.
func Unauthenticated(format string, args ...any) *Error {
	return New(http.StatusUnauthorized, format, args...)
}

// PermissionDenied is a 403: the caller is known but may not do this.
func PermissionDenied(format string, args ...any) *Error {
	return New(http.StatusForbidden, format, args...)
}

// NotFound is a 404: the named resource does not exist.
func NotFound(format string, args ...any) *Error { return New(http.StatusNotFound, format, args...) }

// AlreadyExists is a 409: the resource to create is already there.
func AlreadyExists(format string, args ...any) *Error {
	return New(http.StatusConflict, format, args...)
}

// ResourceExhausted is a 429: a rate limit or quota is used up.
func ResourceExhausted(format string, args ...any) *Error {
	return New(http.StatusTooManyRequests, format, args...)
}

// Internal is a 500: a fault of the server, not of the request.
func Internal(format string, args ...any) *Error {
	return New(http.StatusInternalServerError, format, args...)
}

// Unavailable is a 503: a dependency is down; the request may be retried.
func Unavailable(format string, args ...any) *Error {
	return New(http.StatusServiceUnavailable, format, args...)
}

// GRPCCode is the gRPC status code that matches an HTTP status.
func GRPCCode(httpCode int) int {
	switch httpCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return 3 // InvalidArgument
	case http.StatusUnauthorized:
		return 16 // Unauthenticated
	case http.StatusForbidden:
		return 7 // PermissionDenied
	case http.StatusNotFound:
		return 5 // NotFound
	case http.StatusConflict:
		return 6 // AlreadyExists
	case http.StatusPreconditionFailed:
		return 9 // FailedPrecondition
	case http.StatusTooManyRequests:
		return 8 // ResourceExhausted
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return 12 // Unimplemented
	case http.StatusGatewayTimeout:
		return 4 // DeadlineExceeded
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return 14 // Unavailable
	}
	if httpCode >= 500 {
		return 13 // Internal
	}
	return 2 // Unknown
}

type envelope struct {
	Error body `json:"error"`
}

type body struct {
	GRPCCode   int    `json:"grpc_code"`
	HTTPCode   int    `json:"http_code"`
	HTTPStatus string `json:"http_status"`
	Message    string `json:"message"`
	Details    []any  `json:"details"`
}

// MarshalJSON writes the envelope.
func (e *Error) MarshalJSON() ([]byte, error) {
	details := e.Details
	if details == nil {
		details = []any{}
	}
	return json.Marshal(envelope{body{
		GRPCCode:   GRPCCode(e.HTTPCode),
		HTTPCode:   e.HTTPCode,
		HTTPStatus: http.StatusText(e.HTTPCode),
		Message:    e.Message,
		Details:    details,
	}})
}

// Parse reads an envelope; ok is false when b is not one.
func Parse(b []byte) (e *Error, ok bool) {
	var env envelope
	if json.Unmarshal(b, &env) != nil || env.Error.HTTPCode == 0 {
		return nil, false
	}
	return &Error{HTTPCode: env.Error.HTTPCode, Message: env.Error.Message, Details: env.Error.Details}, true
}

// From returns the *Error in err's chain, or an Internal error with a
// generic message: an unexpected error's text may carry internals that a
// client must not see.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal("The request failed because of an internal error. Try again later; if it persists, report the request id.")
}

// Write answers the request with the envelope.
func Write(w http.ResponseWriter, e *Error) {
	b, _ := e.MarshalJSON()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.HTTPCode)
	w.Write(b)
}
