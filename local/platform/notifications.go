package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/local/mailbox"
)

// Where the local platform keeps what the notification functions need,
// under DevDir.
const (
	// MailDir is where the local mailbox keeps every email the platform
	// sends, one .eml file each.
	MailDir = "mail"
	// VAPIDFile holds the local VAPID key pair (0600), made on first run so
	// that browser subscriptions keep working across runs.
	VAPIDFile = "vapid.json"
	// localSender is the From of the platform's emails.
	localSender = "Skyflow <no-reply@skyflow.localhost>"
)

// startMailbox runs the local SMTP server (local/mailbox) that stands for
// the mail relay: STARTTLS with the development certificate, AUTH with a
// password made for this run; notify-email reaches it through
// Secret/skyflow-smtp.
func (p *Platform) startMailbox(certFile, keyFile string) error {
	mb, err := mailbox.Start(mailbox.Config{Dir: filepath.Join(p.cfg.DevDir, MailDir), CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		return fmt.Errorf("the local mailbox: %w", err)
	}
	p.mailbox, p.mailCA = mb, certFile
	p.closers = append(p.closers, func(context.Context) error { return mb.Close() })
	return nil
}

// Mailbox is the local SMTP server every email of the platform goes to.
func (p *Platform) Mailbox() *mailbox.Mailbox { return p.mailbox }

// ensureVAPID reads the local VAPID key pair, making it on first run.
func ensureVAPID(file string) (*push.VAPID, error) {
	var v push.VAPID
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &v); err != nil || v.PublicKey == "" || v.PrivateKey == "" {
			return nil, fmt.Errorf("%s is not a VAPID key pair: remove it to make a new one (browsers must then subscribe again)", file)
		}
		return &v, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	made, err := push.GenerateVAPID("mailto:dev@skyflow.localhost")
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(made, "", "  ") //nolint:gosec // G117: the key pair is kept in a 0600 file of its own, to be reused
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	return made, nil
}

// notificationSecrets are the local values of Secret/skyflow-smtp and
// Secret/skyflow-vapid.
func (p *Platform) notificationSecrets() (smtp, vapid map[string]string) {
	smtp = map[string]string{"url": p.mailbox.URL(), "from": localSender, "ca-file": p.mailCA}
	vapid = map[string]string{"public-key": p.vapid.PublicKey, "private-key": p.vapid.PrivateKey, "subject": p.vapid.Subject}
	return smtp, vapid
}

// settlePublicAddr picks the gateway's port now when it is 0, so that the
// public URL (where links in emails point) can be told to the functions.
func (p *Platform) settlePublicAddr() error {
	host, port, err := net.SplitHostPort(p.cfg.PublicAddr)
	if err != nil {
		return fmt.Errorf("the gateway's address %q: %w", p.cfg.PublicAddr, err)
	}
	if port != "0" {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	p.cfg.PublicAddr = ln.Addr().String()
	return ln.Close()
}

// publicURL is the gateway's http address as a browser names it: the
// local stand-in for the web application's address (skyflow-config's
// public-url).
func (p *Platform) publicURL() string {
	host, port, err := net.SplitHostPort(p.cfg.PublicAddr)
	if err != nil {
		return "http://" + p.cfg.PublicAddr
	}
	if a := net.ParseIP(host); host == "" || a != nil && (a.IsLoopback() || a.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
