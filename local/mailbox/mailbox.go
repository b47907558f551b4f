// Package mailbox is the local platform's SMTP server, for development and
// tests: it stands where a mail relay stands in a cluster, so that
// notify-email talks real SMTP — STARTTLS with a given certificate, then
// AUTH PLAIN with a generated password, both required — and keeps every
// message it accepts as an .eml file in a directory (`.dev/mail/` under
// `make run`) instead of delivering it. Messages reads them back.
//
// It is built on github.com/emersion/go-smtp and never runs in a cluster.
package mailbox

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultUsername is the account the mailbox accepts unless told another.
const DefaultUsername = "skyflow"

// Config says how to run a Mailbox.
type Config struct {
	// Dir is where messages are kept, one .eml file each (made 0700).
	Dir string
	// Addr is the listen address (default 127.0.0.1:0, a free port).
	Addr string
	// CertFile and KeyFile are the certificate STARTTLS presents.
	CertFile, KeyFile string
	// Username and Password are the one account AUTH PLAIN accepts
	// (default DefaultUsername and a random password).
	Username, Password string
	// Domain is the name in the greeting (default localhost).
	Domain string
	// MaxMessageBytes bounds a message (default 10 MiB).
	MaxMessageBytes int64
	// Rcpt, when set, may refuse a recipient by returning an error (an
	// *smtp.SMTPError sets the reply code): tests use it to play a relay
	// that refuses an address for good (5xx) or for now (4xx).
	Rcpt func(to string) error
	// ErrorLog receives the server's unexpected errors (default discarded).
	ErrorLog io.Writer
}

// Mailbox is a running SMTP server.
type Mailbox struct {
	cfg    Config
	server *smtp.Server
	ln     net.Listener
	done   chan struct{}

	mu  sync.Mutex
	seq int
}

// Start listens and serves until Close.
func Start(cfg Config) (*Mailbox, error) {
	if cfg.Dir == "" || cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("mailbox: Dir, CertFile and KeyFile are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Username == "" {
		cfg.Username = DefaultUsername
	}
	if cfg.Password == "" {
		cfg.Password = randomPassword()
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 10 << 20
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = io.Discard
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("mailbox: the TLS certificate: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mailbox: listening on %s: %w", cfg.Addr, err)
	}
	m := &Mailbox{cfg: cfg, ln: ln, done: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{m: m, conn: c}, nil
	}))
	s.Domain = cfg.Domain
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.AllowInsecureAuth = false // AUTH only after STARTTLS, so a password never crosses in the clear
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = 50
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	s.ErrorLog = log.New(cfg.ErrorLog, "mailbox: ", 0)
	m.server = s
	go func() {
		defer close(m.done)
		if err := s.Serve(ln); err != nil { // nil after Close
			s.ErrorLog.Printf("serve: %v", err)
		}
	}()
	return m, nil
}

func randomPassword() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Addr is the address the server listens on.
func (m *Mailbox) Addr() string { return m.ln.Addr().String() }

// Username and Password are the account AUTH accepts.
func (m *Mailbox) Username() string { return m.cfg.Username }

// Password is the account's password.
func (m *Mailbox) Password() string { return m.cfg.Password }

// URL is the server as notify-email's SKYFLOW_SMTP_URL names it:
// smtp://<user>:<password>@<addr> (STARTTLS required).
func (m *Mailbox) URL() string {
	u := url.URL{Scheme: "smtp", User: url.UserPassword(m.cfg.Username, m.cfg.Password), Host: m.Addr()}
	return u.String()
}

// Dir is where messages are kept.
func (m *Mailbox) Dir() string { return m.cfg.Dir }

// Close stops the server; messages stay in Dir.
func (m *Mailbox) Close() error {
	err := m.server.Close()
	<-m.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// The headers the mailbox puts before a message it keeps: the envelope,
// which the message's own headers need not repeat.
const (
	headerFrom     = "Return-Path: "
	headerTo       = "X-Skyflow-Mailbox-To: "
	headerReceived = "Received: "
)

// store keeps one message.
func (m *Mailbox) store(helo, from string, to []string, data []byte) error {
	m.mu.Lock()
	m.seq++
	now := time.Now().UTC()
	name := fmt.Sprintf("%s-%06d.eml", now.Format("20060102T150405.000000000Z"), m.seq)
	m.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s<%s>\r\n", headerFrom, from)
	fmt.Fprintf(&b, "%s%s\r\n", headerTo, strings.Join(to, ", "))
	fmt.Fprintf(&b, "%sfrom %s by %s (skyflow local mailbox); %s\r\n", headerReceived, sanitize(helo), m.cfg.Domain, now.Format(time.RFC1123Z))
	b.Write(data)
	tmp := filepath.Join(m.cfg.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(m.cfg.Dir, name))
}

// sanitize keeps a client-given name on one header line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '_'
		}
		return r
	}, s)
}

// Message is a kept message.
type Message struct {
	File     string    // its .eml file
	From     string    // the envelope sender (MAIL FROM)
	To       []string  // the envelope recipients (RCPT TO)
	Received time.Time // when it was accepted
	Data     []byte    // the message as the client sent it
}

// Messages reads every kept message in Dir, oldest first.
func (m *Mailbox) Messages() ([]Message, error) { return Read(m.cfg.Dir) }

// Read reads every message a mailbox kept in dir, oldest first.
func Read(dir string) ([]Message, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Message
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		msg, err := parse(raw)
		if err != nil {
			return nil, fmt.Errorf("mailbox: %s: %w", name, err)
		}
		msg.File = name
		out = append(out, msg)
	}
	return out, nil
}

func parse(raw []byte) (Message, error) {
	var msg Message
	r := bufio.NewReader(bytes.NewReader(raw))
	for _, prefix := range []string{headerFrom, headerTo, headerReceived} {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, prefix) {
			return msg, errors.New("not a message the mailbox kept")
		}
		v := strings.TrimSpace(strings.TrimPrefix(line, prefix))
		switch prefix {
		case headerFrom:
			msg.From = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		case headerTo:
			msg.To = strings.Split(v, ", ")
		case headerReceived:
			if i := strings.LastIndex(v, "; "); i >= 0 {
				msg.Received, _ = time.Parse(time.RFC1123Z, v[i+2:])
			}
		}
	}
	msg.Data, _ = io.ReadAll(r)
	return msg, nil
}

// session is one SMTP connection.
type session struct {
	m      *Mailbox
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(s.m.cfg.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(s.m.cfg.Password)) == 1
		if !userOK || !passOK || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	if s.m.cfg.Rcpt != nil {
		if err := s.m.cfg.Rcpt(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.to) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	if err := s.m.store(s.conn.Hostname(), s.from, s.to, data); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "The message could not be stored; try again"}
	}
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }
