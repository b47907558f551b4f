package mailbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"

	"github.com/skyflow-oss/skyflow/local/devcert"
	"github.com/skyflow-oss/skyflow/local/mailbox"
)

// start runs a mailbox with a fresh development certificate and returns
// it with a TLS configuration that trusts that certificate.
func start(t *testing.T, cfg mailbox.Config) (*mailbox.Mailbox, *tls.Config) {
	t.Helper()
	cert, key, err := devcert.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.CertFile, cfg.KeyFile = cert, key
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	m, err := mailbox.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return m, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// send delivers one message the way notify-email does: STARTTLS
// required, then AUTH PLAIN.
func send(t *testing.T, m *mailbox.Mailbox, tc *tls.Config, user, pass, to string) error {
	t.Helper()
	host, port, _ := net.SplitHostPort(m.Addr())
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	c, err := gomail.NewClient(host, gomail.WithPort(p), gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tc),
		gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(user), gomail.WithPassword(pass), gomail.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := gomail.NewMsg()
	msg.From("Skyflow <no-reply@skyflow.test>")
	msg.To(to)
	msg.Subject("Hello")
	msg.SetBodyString(gomail.TypeTextPlain, "Hello, Ada.")
	return c.DialAndSendWithContext(context.Background(), msg)
}

func TestMessagesAreKeptAndReadBack(t *testing.T) {
	m, tc := start(t, mailbox.Config{})
	if !strings.HasPrefix(m.URL(), "smtp://skyflow:"+m.Password()+"@127.0.0.1:") {
		t.Fatalf("URL %q", m.URL())
	}
	for _, to := range []string{"ada@example.com", "grace@example.com"} {
		if err := send(t, m, tc, m.Username(), m.Password(), to); err != nil {
			t.Fatalf("sending: %v", err)
		}
	}
	msgs, err := m.Messages()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Messages = %d, %v", len(msgs), err)
	}
	first := msgs[0]
	if first.From != "no-reply@skyflow.test" || len(first.To) != 1 || first.To[0] != "ada@example.com" || time.Since(first.Received) > time.Minute {
		t.Fatalf("envelope: %+v", first)
	}
	parsed, err := mail.ReadMessage(strings.NewReader(string(first.Data)))
	if err != nil || parsed.Header.Get("Subject") != "Hello" {
		t.Fatalf("the kept message does not parse: %v %v", parsed, err)
	}
	st, err := os.Stat(first.File)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v (%v)", st.Mode(), err)
	}
	if msgs[1].To[0] != "grace@example.com" {
		t.Fatalf("not oldest first: %+v", msgs[1].To)
	}
	// Read finds the same messages in the directory after the server stops.
	m.Close()
	again, err := mailbox.Read(m.Dir())
	if err != nil || len(again) != 2 {
		t.Fatalf("Read = %d, %v", len(again), err)
	}
}

func TestAuthIsRequiredAndOnlyOverTLS(t *testing.T) {
	m, tc := start(t, mailbox.Config{Password: "correct horse"})
	if err := send(t, m, tc, "skyflow", "wrong", "ada@example.com"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	// Without STARTTLS, AUTH is not offered and MAIL is refused.
	c, err := smtp.Dial(m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH is offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS is not offered")
	}
	if err := c.Mail("x@example.com"); err == nil || !strings.HasPrefix(err.Error(), "502") {
		t.Errorf("MAIL without AUTH: %v, want 502", err)
	}
	// After STARTTLS but before AUTH, still refused.
	if err := c.StartTLS(tc); err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN" {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	if err := c.Mail("x@example.com"); err == nil {
		t.Error("MAIL without AUTH over TLS was accepted")
	}
	if msgs, _ := m.Messages(); len(msgs) != 0 {
		t.Fatalf("%d messages kept", len(msgs))
	}
}

func TestRcptHookRefusesRecipients(t *testing.T) {
	m, tc := start(t, mailbox.Config{Rcpt: func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		return nil
	}})
	err := send(t, m, tc, m.Username(), m.Password(), "gone@example.com")
	var se *gomail.SendError
	if !errors.As(err, &se) || se.ErrorCode() != 550 || se.IsTemp() {
		t.Fatalf("send to a refused recipient: %v", err)
	}
	if err := send(t, m, tc, m.Username(), m.Password(), "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := m.Messages(); len(msgs) != 1 {
		t.Fatalf("%d messages kept, want 1", len(msgs))
	}
}
