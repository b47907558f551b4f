package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/skyflow-oss/skyflow/runtime/config"
)

// smtpTimeout bounds one delivery: connect, TLS, AUTH and the message.
const smtpTimeout = 15 * time.Second

// relay is the mail server notify-email hands messages to.
type relay struct {
	host        string
	port        int
	implicitTLS bool // smtps://: TLS from the first byte; smtp://: STARTTLS, required
	user, pass  string
	tls         *tls.Config
	from        *mail.Address
}

// relayFromEnv reads SKYFLOW_SMTP_URL, SKYFLOW_SMTP_FROM and
// SKYFLOW_SMTP_CA_FILE, and returns what is wrong with them by setting
// name, never by value (the URL holds the password).
//
//	smtp://user:password@host[:587]   STARTTLS, required (never plain text)
//	smtps://user:password@host[:465]  implicit TLS
//
// Without user information no AUTH is sent. The relay's certificate is
// verified against the system's roots plus SKYFLOW_SMTP_CA_FILE (PEM).
func relayFromEnv(env *config.Env) (*relay, []error) {
	var errs []error
	r := &relay{}
	raw := env.Required("SKYFLOW_SMTP_URL", "the mail relay (smtp://user:password@host:587 for STARTTLS, smtps://…:465 for implicit TLS)")
	if raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "":
			errs = append(errs, errors.New("SKYFLOW_SMTP_URL: is not smtp://[user:password@]host[:port] or smtps://…"))
		case u.Scheme != "smtp" && u.Scheme != "smtps":
			errs = append(errs, fmt.Errorf("SKYFLOW_SMTP_URL: has scheme %q; want smtp (STARTTLS, required) or smtps (implicit TLS)", u.Scheme))
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, errors.New("SKYFLOW_SMTP_URL: takes no path, query or fragment"))
		default:
			r.implicitTLS = u.Scheme == "smtps"
			r.host, r.port = u.Hostname(), 587
			if r.implicitTLS {
				r.port = 465
			}
			if p := u.Port(); p != "" {
				if r.port, err = strconv.Atoi(p); err != nil || r.port < 1 || r.port > 65535 {
					errs = append(errs, errors.New("SKYFLOW_SMTP_URL: the port is not a number from 1 to 65535"))
				}
			}
			if u.User != nil {
				r.user = u.User.Username()
				r.pass, _ = u.User.Password()
			}
		}
	}
	if from := env.Required("SKYFLOW_SMTP_FROM", "the sender of notifications, such as Skyflow <no-reply@example.com>"); from != "" {
		a, err := mail.ParseAddress(from)
		if err != nil {
			errs = append(errs, errors.New("SKYFLOW_SMTP_FROM: is not an address such as Skyflow <no-reply@example.com>"))
		}
		r.from = a
	}
	if r.host != "" {
		var err error
		if r.tls, err = loadTLS(r.host, env.String("SKYFLOW_SMTP_CA_FILE", "")); err != nil {
			errs = append(errs, err)
		}
	}
	return r, errs
}

// loadTLS trusts the system's roots plus the certificates in caFile.
func loadTLS(host, caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("SKYFLOW_SMTP_CA_FILE: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("SKYFLOW_SMTP_CA_FILE: holds no PEM certificate")
		}
	}
	return &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// client makes a go-mail client for one delivery.
func (r *relay) client() (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(r.port),
		gomail.WithTimeout(smtpTimeout),
		gomail.WithTLSConfig(r.tls),
	}
	if r.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if r.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(r.user), gomail.WithPassword(r.pass))
	}
	return gomail.NewClient(r.host, opts...)
}

// outcome is what became of one message.
type outcome int

const (
	delivered outcome = iota
	// rejected: the relay refused the recipient or the message for good
	// (5xx): sending again would fail again, so it is dropped.
	rejected
	// temporary: the relay could not be reached or said try later (4xx):
	// the Trigger's retry sends it.
	temporary
)

// deliveryError describes a failure without the recipient's address or
// the server's words (which may quote it): only the stage and the codes.
type deliveryError struct {
	stage    string
	code     int
	enhanced string
}

func (e *deliveryError) Error() string {
	if e.code == 0 {
		return "smtp: " + e.stage
	}
	s := fmt.Sprintf("smtp: %s: the relay answered %d", e.stage, e.code)
	if e.enhanced != "" {
		s += " (" + e.enhanced + ")"
	}
	return s
}

// send hands one message to the relay and classifies the result.
func (r *relay) send(ctx context.Context, msg *gomail.Msg) (outcome, error) {
	c, err := r.client()
	if err != nil {
		return temporary, &deliveryError{stage: "the client could not be configured"}
	}
	err = c.DialAndSendWithContext(ctx, msg)
	if err == nil {
		return delivered, nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		de := &deliveryError{stage: se.Reason.String(), code: se.ErrorCode(), enhanced: se.EnhancedStatusCode()}
		permanent := se.ErrorCode() >= 500 && se.ErrorCode() < 600
		switch {
		case permanent && se.Reason == gomail.ErrSMTPRcptTo:
			return rejected, de // this recipient, for good
		case permanent && (se.Reason == gomail.ErrSMTPData || se.Reason == gomail.ErrSMTPDataClose):
			return rejected, de // this message, for good
		}
		return temporary, de
	}
	// Dialling, TLS or AUTH failed: the relay is down, unreachable or
	// misconfigured. Retried; after the last retry the event is a dead letter.
	return temporary, &deliveryError{stage: dialStage(err)}
}

// dialStage names what failed before a message could be sent, without
// the error's text (which could name the relay's credentials).
func dialStage(err error) string {
	var rec tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(msg, "i/o timeout"):
		return "the relay did not answer in time"
	case strings.Contains(msg, "connection refused"):
		return "the relay refused the connection"
	case errors.As(err, &rec), strings.Contains(msg, "certificate"), strings.Contains(msg, "tls:"), strings.Contains(msg, "STARTTLS"):
		return "TLS with the relay failed (check its certificate and SKYFLOW_SMTP_CA_FILE)"
	case strings.Contains(msg, "535"), strings.Contains(msg, "auth"), strings.Contains(msg, "AUTH"):
		return "the relay refused the credentials (check SKYFLOW_SMTP_URL)"
	}
	return "the relay could not be reached"
}

// hostOf is the part of an address after @, for the Message-ID.
func hostOf(addr string) string {
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
