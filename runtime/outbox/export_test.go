package outbox

import "context"

// WithoutRelay makes a publisher that sends only when told to (Flush,
// Sweep), so a test can look at the outbox between steps.
func WithoutRelay() Option { return func(o *options) { o.relay = false } }

// Claim runs one claim, as a relay round starts with, and returns how
// many rows it took.
func (p *Publisher) Claim(ctx context.Context) (int, error) {
	recs, err := p.claim(ctx, 0)
	return len(recs), err
}
