package supervisor

import (
	"bytes"
	"io"
	"sync"
)

// maxLine bounds a buffered partial line; a longer one is written in pieces.
const maxLine = 64 << 10

// logSink serialises whole lines from every process into one writer, so
// that lines of different functions never interleave mid-line.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) writeLine(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(b) // a failing log must never block or fail a function
}

// lineWriter prefixes every line a process writes. exec.Cmd calls Write
// from one goroutine at a time when Stdout and Stderr are the same writer.
type lineWriter struct {
	sink   *logSink
	prefix []byte
	buf    []byte
}

func newLineWriter(sink *logSink, name string) *lineWriter {
	return &lineWriter{sink: sink, prefix: []byte("[" + name + "] ")}
}

func (l *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.buf = append(l.buf, b...)
			if len(l.buf) >= maxLine {
				l.Flush()
			}
			break
		}
		l.buf = append(l.buf, b[:i+1]...)
		l.emit()
		b = b[i+1:]
	}
	return n, nil
}

// Flush writes a pending partial line, ending it with a newline.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.buf = append(l.buf, '\n')
		l.emit()
	}
}

func (l *lineWriter) emit() {
	line := make([]byte, 0, len(l.prefix)+len(l.buf))
	line = append(append(line, l.prefix...), l.buf...)
	l.sink.writeLine(line)
	l.buf = l.buf[:0]
}
