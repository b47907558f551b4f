// Package outbox is Skyflow's transactional outbox: the way a function
// publishes events without ever losing one.
//
// A function writes its events with [Add] in the same pgx transaction as the
// state change they announce, so an event exists if and only if the change
// committed. After commit, a [Publisher] POSTs them to the broker ingress
// (K_SINK) as binary-mode CloudEvents and marks them sent; [Publisher.Sweep]
// resends whatever was left unsent, with per-event exponential backoff.
// [Publisher.Transact] does all of this around a function's work.
//
// Delivery is at least once. A resend is the same event with the same source
// and id, byte for byte, so consumers drop duplicates by source+id.
//
// Event data may be sensitive. The package never logs it, and the row's
// last_error holds only a status code or a short transport error.
package outbox
