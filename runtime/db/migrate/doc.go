// Package migrate applies Skyflow's versioned SQL migrations.
//
// Migrations are the files sql/NNNN_name.sql embedded in this package, applied
// in version order, each in its own transaction, and recorded in the table
// schema_migrations with the SHA-256 of the file. Only the `skyflow migrate`
// command and tests run them: functions never migrate on cold start.
//
// [Up] holds a PostgreSQL advisory lock while it works, so concurrent runs
// are safe: the second waits and then finds nothing to do. It refuses to run
// when a migration that was applied has since changed or been removed,
// because the database no longer matches the files.
//
// A migration must not edit an applied file; it adds a new one.
package migrate
