// Package sql provides the sql_insert and sql_raw outputs: compatible
// subsets of the Redpanda Connect outputs of the same names, for Postgres
// (pgx) and SQLite (pure Go, no cgo).
//
// Both run on database/sql. Its pool gives the conn_* fields their exact
// meaning, discards broken connections and dials new ones, so writes recover
// by themselves when a database comes back. sql_raw reaches through to the
// pgx connection underneath to pipeline a batch to Postgres in one round
// trip.
//
// A batch is written in one round trip and one transaction where the
// database allows it, and acknowledged only after the commit; a failed write
// returns its error so the engine nacks the batch and the input can retry.
package sql
