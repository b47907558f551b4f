package identity_test

import (
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const password = "correct horse battery staple"

// register makes a verified user and returns it.
func (f *fixture) register(email string) *identity.User {
	f.t.Helper()
	u, err := f.service("users-register").Register(f.ctx, identity.RegisterRequest{Email: email, Password: password, DisplayName: "Ada Lovelace"})
	if err != nil {
		f.t.Fatalf("register: %v", err)
	}
	tok, err := f.service("users-register").IssueVerification(f.ctx, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.service("users-verify-email").VerifyEmail(f.ctx, identity.VerifyEmailRequest{Token: tok}); err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	return u
}

// TestUserJourney: register, verify, log in, refresh, reuse of a spent
// refresh token revokes the session, log out denies the access token.
func TestUserJourney(t *testing.T) {
	f := setup(t)
	u, err := f.service("users-register").Register(f.ctx, identity.RegisterRequest{Email: " Ada@Example.com ", Password: password, DisplayName: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" || u.EmailVerified {
		t.Errorf("registered %+v", u)
	}
	if _, err := f.service("users-register").Register(f.ctx, identity.RegisterRequest{Email: "ada@example.com", Password: password, DisplayName: "Eve"}); status(err) != 409 {
		t.Errorf("duplicate registration: %v, want 409", err)
	}
	login := func() (*identity.Session, error) {
		return f.service("users-login").Login(f.ctx, identity.LoginRequest{Email: "ada@example.com", Password: password}, "192.0.2.1")
	}
	if _, err := login(); status(err) != 403 {
		t.Errorf("login before verifying: %v, want 403", err)
	}
	tok, err := f.service("users-register").IssueVerification(f.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.service("users-verify-email").VerifyEmail(f.ctx, identity.VerifyEmailRequest{Token: tok + "x"}); status(err) != 400 {
		t.Errorf("a wrong verification token: %v, want 400", err)
	}
	if v, err := f.service("users-verify-email").VerifyEmail(f.ctx, identity.VerifyEmailRequest{Token: tok}); err != nil || !v.EmailVerified {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	if _, err := f.service("users-verify-email").VerifyEmail(f.ctx, identity.VerifyEmailRequest{Token: tok}); status(err) != 400 {
		t.Errorf("a spent verification token: %v, want 400", err)
	}

	s1, err := login()
	if err != nil {
		t.Fatal(err)
	}
	claims, err := f.backend.Keys.Verify(f.ctx, s1.AccessToken)
	if err != nil || claims.Subject != "user:"+u.ID || s1.TokenType != "Bearer" || s1.ExpiresIn != 900 {
		t.Fatalf("access token: %+v, %v (session %+v)", claims, err, s1)
	}
	s2, err := f.service("users-refresh").Refresh(f.ctx, identity.RefreshRequest{RefreshToken: s1.RefreshToken})
	if err != nil || s2.RefreshToken == s1.RefreshToken {
		t.Fatalf("refresh: %+v, %v", s2, err)
	}
	// s1's refresh token again: stolen. The whole family goes, s2 included.
	if _, err := f.service("users-refresh").Refresh(f.ctx, identity.RefreshRequest{RefreshToken: s1.RefreshToken}); status(err) != 401 {
		t.Fatalf("reuse of a spent refresh token: %v, want 401", err)
	}
	if _, err := f.service("users-refresh").Refresh(f.ctx, identity.RefreshRequest{RefreshToken: s2.RefreshToken}); status(err) != 401 {
		t.Errorf("the family's newest refresh token after the reuse: %v, want 401", err)
	}
	c2, _ := f.backend.Keys.Verify(f.ctx, s2.AccessToken)
	if denied, err := f.backend.Denied(f.ctx, c2.ID); err != nil || !denied {
		t.Errorf("s2's access token after the reuse: denied %v, %v", denied, err)
	}

	// A new login, then log out: the access token is denied.
	s3, err := login()
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := f.backend.Keys.Verify(f.ctx, s3.AccessToken)
	if denied, _ := f.backend.Denied(f.ctx, c3.ID); denied {
		t.Fatal("a fresh access token is denied")
	}
	me := request.Principal{ID: "user:" + u.ID}
	if _, err := f.service("users-logout").Logout(f.ctx, request.Principal{ID: "user:00000000-0000-4000-8000-000000000009"}, identity.RefreshRequest{RefreshToken: s3.RefreshToken}); status(err) != 401 {
		t.Errorf("logging out someone else's session: %v, want 401", err)
	}
	if _, err := f.service("users-logout").Logout(f.ctx, me, identity.RefreshRequest{RefreshToken: s3.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if denied, _ := f.backend.Denied(f.ctx, c3.ID); !denied {
		t.Error("the access token is not denied after log out")
	}
	if _, err := f.service("users-refresh").Refresh(f.ctx, identity.RefreshRequest{RefreshToken: s3.RefreshToken}); status(err) != 401 {
		t.Errorf("refresh after log out: %v, want 401", err)
	}

	// Profile and preferences.
	name := "Ada King"
	if p, err := f.service("users-profile-update").UpdateProfile(f.ctx, me, identity.ProfileUpdate{DisplayName: &name}); err != nil || p.DisplayName != name {
		t.Errorf("profile update: %+v, %v", p, err)
	}
	if p, err := f.service("users-preferences-get").GetPreferences(f.ctx, me); err != nil || len(p.Channels["security"]) != 1 {
		t.Errorf("default preferences: %+v, %v", p, err)
	}
	prefs := identity.Preferences{Channels: map[string][]string{"security": {"push", "email"}, "vault.record": {"webhook"}}}
	if _, err := f.service("users-preferences-update").SetPreferences(f.ctx, me, prefs); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.service("users-preferences-get").GetPreferences(f.ctx, me); len(p.Channels) != 2 || p.Channels["security"][0] != "email" {
		t.Errorf("preferences read back: %+v", p)
	}
	for _, bad := range []map[string][]string{{"security": {"sms"}}, {"Bad Kind": {"email"}}, {"security": {"email", "email"}}} {
		if _, err := f.service("users-preferences-update").SetPreferences(f.ctx, me, identity.Preferences{Channels: bad}); status(err) != 400 {
			t.Errorf("preferences %v: %v, want 400", bad, err)
		}
	}
	f.checkEvents(password, s1.RefreshToken, s1.AccessToken, tok, "ada@example.com")
	if len(f.sink.OfType(identity.UserSessionRevokedType)) != 2 {
		t.Errorf("%d session.revoked events, want 2 (reuse and log out)", len(f.sink.OfType(identity.UserSessionRevokedType)))
	}
}

func TestRegistrationRefusesBadInput(t *testing.T) {
	f := setup(t)
	for _, c := range []struct {
		req  identity.RegisterRequest
		says string
	}{
		{identity.RegisterRequest{Email: "not-an-email", Password: password, DisplayName: "x"}, "email"},
		{identity.RegisterRequest{Email: "Ada <ada@example.com>", Password: password, DisplayName: "x"}, "email"},
		{identity.RegisterRequest{Email: "ada@example.com", Password: "Xq7!", DisplayName: "x"}, "password"},
		{identity.RegisterRequest{Email: "ada@example.com", Password: strings.Repeat("a", 10000), DisplayName: "x"}, "password"},
		{identity.RegisterRequest{Email: "ada@example.com", Password: password, DisplayName: ""}, "displayName"},
		{identity.RegisterRequest{Email: "ada@example.com", Password: password, DisplayName: "a\x00b"}, "displayName"},
	} {
		_, err := f.service("users-register").Register(f.ctx, c.req)
		if status(err) != 400 || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.says)) || strings.Contains(err.Error(), c.req.Password) {
			t.Errorf("%+v: %v, want a 400 about %s", c.req.Email, err, c.says)
		}
	}
	var n int
	f.backend.Pool.QueryRow(f.ctx, `SELECT count(*) FROM users`).Scan(&n)
	if n != 0 {
		t.Errorf("%d users after refused registrations", n)
	}
}

// TestLoginLocksAfterRepeatedFailures: wrong passwords slow down, then
// lock the account (announced once); an unknown email gets the same
// answers; the right password is refused while locked.
func TestLoginLocksAfterRepeatedFailures(t *testing.T) {
	f := setup(t)
	f.register("bob@example.com")
	try := func(email, pw string) error {
		_, err := f.service("users-login").Login(f.ctx, identity.LoginRequest{Email: email, Password: pw}, "198.51.100.7")
		return err
	}
	var statuses, ghost []int
	for i := 0; i < identity.AccountPolicy.LockAfter+1; i++ {
		statuses = append(statuses, status(try("bob@example.com", "wrong password!!")))
		ghost = append(ghost, status(try("nobody@example.com", "wrong password!!")))
	}
	last := len(statuses) - 1
	for i, s := range statuses[:last] {
		if s != 401 || ghost[i] != 401 {
			t.Fatalf("attempt %d: %d for the account, %d for an unknown email; want 401 both", i+1, s, ghost[i])
		}
	}
	if statuses[last] != 429 || ghost[last] != 429 {
		t.Errorf("after %d failures: %d and %d, want 429 for both", identity.AccountPolicy.LockAfter, statuses[last], ghost[last])
	}
	if err := try("bob@example.com", password); status(err) != 429 {
		t.Errorf("the right password while locked: %v, want 429", err)
	}
	if n := len(f.sink.OfType(identity.UserLoginLockedType)); n != 1 {
		t.Errorf("%d login.locked events, want exactly 1 (for the existing account only)", n)
	}
	f.checkEvents(password, "bob@example.com")
}
