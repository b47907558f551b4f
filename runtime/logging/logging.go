// Package logging makes the JSON slog loggers every process uses: one line
// per record, with the function name and, when the context has them, the
// request id and the trace and span ids, so that Loki and Jaeger meet.
//
// Never log a sensitive value: log ids, types, counts and codes.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// WithRequestID returns a context whose log records carry the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the context's request id, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// New returns a JSON logger writing to w, tagged with the function name.
// level is debug, info, warn or error (default info).
func New(w io.Writer, function, level string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: ParseLevel(level)})
	return slog.New(newContextHandler(h)).With("function", function)
}

// ParseLevel reads a level name; unknown names mean info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// contextHandler adds the context's request and trace ids to each record,
// at the top level of the record even within groups, so that they are
// found under the same keys in every line.
type contextHandler struct {
	slog.Handler // root with ops applied: what records without ids go to
	// root is the handler before the first group, with the attributes
	// given until then.
	root slog.Handler
	// ops are the groups and attributes given since the first group.
	ops []handlerOp
}

// handlerOp is a WithGroup (group set) or a WithAttrs (attrs set).
type handlerOp struct {
	group string
	attrs []slog.Attr
}

func newContextHandler(h slog.Handler) contextHandler {
	return contextHandler{Handler: h, root: h}
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	var ids []slog.Attr
	if id := RequestID(ctx); id != "" {
		ids = append(ids, slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ids = append(ids, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if len(ids) == 0 {
		return h.Handler.Handle(ctx, r)
	}
	if len(h.ops) == 0 {
		r.AddAttrs(ids...)
		return h.Handler.Handle(ctx, r)
	}
	// Within a group, the record's attributes would land in the group:
	// put the ids on the root and open the groups again after them.
	out := h.root.WithAttrs(ids)
	for _, op := range h.ops {
		if op.group != "" {
			out = out.WithGroup(op.group)
		} else {
			out = out.WithAttrs(op.attrs)
		}
	}
	return out.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	if len(h.ops) == 0 {
		return newContextHandler(h.Handler.WithAttrs(as))
	}
	return contextHandler{Handler: h.Handler.WithAttrs(as), root: h.root, ops: h.with(handlerOp{attrs: as})}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return contextHandler{Handler: h.Handler.WithGroup(name), root: h.root, ops: h.with(handlerOp{group: name})}
}

// with returns a copy of h.ops with op appended: handlers share no slice.
func (h contextHandler) with(op handlerOp) []handlerOp {
	ops := make([]handlerOp, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return append(ops, op)
}
