package identity

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skyflow-oss/skyflow/runtime/db"
)

// Event types the service emits; each has a schema in eventing/catalog.
// Identifiers only: never a password, token, key or email address.
const (
	UserRegisteredType        = "com.skyflow.user.registered"
	UserEmailVerifiedType     = "com.skyflow.user.email.verified"
	UserLoginLockedType       = "com.skyflow.user.login.locked"
	UserSessionRevokedType    = "com.skyflow.user.session.revoked"
	UserProfileUpdatedType    = "com.skyflow.user.profile.updated"
	RolesUpdatedType          = "com.skyflow.principal.roles.updated"
	ServiceAccountCreatedType = "com.skyflow.serviceaccount.created"
	ServiceAccountRevokedType = "com.skyflow.serviceaccount.revoked"
	APIKeyCreatedType         = "com.skyflow.apikey.created"
	APIKeyRevokedType         = "com.skyflow.apikey.revoked"
)

// Service runs the user service's operations for one function.
type Service struct {
	*Backend
	Source string // the CloudEvents source of the events it emits
	Now    func() time.Time
}

// NewService returns a Service on b whose events come from source.
func NewService(b *Backend, source string) *Service {
	return &Service{Backend: b, Source: source, Now: time.Now}
}

// event makes an event about subject (a principal or key id).
func (s *Service) event(typ, actor, subject string, data any) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(s.Source)
	e.SetType(typ)
	e.SetTime(s.Now())
	e.SetSubject(subject)
	if actor != "" {
		e.SetExtension("principal", actor)
	}
	e.SetExtension("partitionkey", subject)
	_ = e.SetData(event.ApplicationJSON, data)
	return e
}

// transact runs fn in one transaction with the events it returns.
func (s *Service) transact(ctx context.Context, fn func(tx pgx.Tx) ([]event.Event, error)) error {
	return dbError(s.Publisher.Transact(ctx, fn))
}

// dbError keeps API errors and turns anything else into a 503 that names
// no value.
func dbError(err error) error {
	return db.APIError(err, "identity", "the user service is not available; try again")
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
