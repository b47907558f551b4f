package kafka

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeLogger passes the embedded broker's warnings and errors to slog;
// its info and debug lines trace every request and are too chatty.
type fakeLogger struct{ log *slog.Logger }

func (l fakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(format, args...))
	}
}

// ClientLogger adapts slog for franz-go clients, at warning level and above.
func ClientLogger(log *slog.Logger) kgo.Logger { return clientLogger{log} }

type clientLogger struct{ log *slog.Logger }

func (clientLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	} else if level != kgo.LogLevelWarn {
		return
	}
	l.log.Log(context.Background(), lvl, msg, keyvals...)
}
