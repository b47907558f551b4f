// Package outbox is Skyflow's transactional outbox: the way a function
// publishes events without ever losing one, and without making a request
// wait for the broker.
//
// A function writes its events with [Add] in the same pgx transaction as the
// state change they announce, so an event exists if and only if the change
// committed; [Publisher.Transact] does this around a function's work and
// answers at commit. The Publisher's relay, woken by the commit, then POSTs
// the committed rows to the broker ingress (K_SINK) as binary-mode
// CloudEvents, many requests' events per round, and marks them sent.
// Events about one subject go out in the order they were added, across
// processes and retries. [Publisher.Close] flushes what is left when a
// process stops; [Publisher.Sweep], the safety net, resends what a killed
// process had taken or what failed, with per-event exponential backoff.
//
// Delivery is at least once. A resend is the same event with the same source
// and id, byte for byte, so consumers drop duplicates by source+id.
//
// Event data may be sensitive. The package never logs it, and the row's
// last_error holds only a status code or a short transport error.
package outbox
