package outbox

// WithoutRelay makes a publisher that sends only when told to (Flush,
// Sweep), so a test can look at the outbox between steps.
func WithoutRelay() Option { return func(o *options) { o.relay = false } }
