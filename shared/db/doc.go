// Package db opens PostgreSQL connection pools for Skyflow function processes.
//
// A function is a small, short-lived process that may scale to zero, so the
// pools made here are small and lazy: [Open] parses the URL and returns at
// once, and the first query dials the server. Schema changes are not made
// here; they belong to package [github.com/skyflow-oss/skyflow/shared/db/migrate].
package db
