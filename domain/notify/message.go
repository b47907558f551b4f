package notify

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	texttemplate "text/template"

	gomail "github.com/wneessen/go-mail"
)

// The templates: one text and one HTML body per notice (the HTML inside
// layout.html). Subjects are the notices' plain titles.
//
//go:embed templates/*.txt templates/*.html
var templateFiles embed.FS

// notices are the notice names with templates.
var notices = []string{NoticeVerifyEmail, NoticeLoginLocked, NoticeAPIKeyCreated, NoticeWebhookDisabled}

type templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// parseTemplates parses every notice's pair; a missing or broken template
// fails Open (the function's Start), not the first email.
func parseTemplates() (*templates, error) {
	t := &templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range notices {
		txt, err := texttemplate.New(name+".txt").Option("missingkey=error").ParseFS(templateFiles, "templates/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("the %s text template: %w", name, err)
		}
		html, err := htmltemplate.New("layout.html").Option("missingkey=error").ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("the %s HTML template: %w", name, err)
		}
		t.text[name], t.html[name] = txt, html
	}
	return t, nil
}

// view is what a template sees: the notice, its details and the
// recipient's name; Link and ExpiresIn for the verification email only.
type view struct {
	Notice    *Notice
	Details   Details
	Name      string
	Link      string
	ExpiresIn string
}

// message renders the email of notice n for recipient r.
func (m *Emailer) message(n *Notice, r *Recipient, v view) (*gomail.Msg, error) {
	v.Notice, v.Details, v.Name = n, n.Details, r.DisplayName
	var text, html bytes.Buffer
	if err := m.templates.text[n.Name].Execute(&text, v); err != nil {
		return nil, fmt.Errorf("rendering the %s text: %w", n.Name, err)
	}
	if err := m.templates.html[n.Name].ExecuteTemplate(&html, "layout", v); err != nil {
		return nil, fmt.Errorf("rendering the %s HTML: %w", n.Name, err)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.relay.from)
	msg.ToMailAddress(&mail.Address{Name: r.DisplayName, Address: r.Email})
	msg.Subject(n.Title)
	msg.SetDate()
	// The same Message-ID for the same event and recipient: a resend after
	// a crash mid-send is recognisably the same message.
	sum := sha256.Sum256([]byte(n.EventSource + "\x00" + n.EventID + "\x00" + r.ID.String()))
	msg.SetMessageIDWithValue(hex.EncodeToString(sum[:16]) + "@" + hostOf(m.relay.from.Address))
	// RFC 3834: no auto-replies (out-of-office) to a machine's mail.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, text.String())
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return msg, nil
}
