// Package sql provides the sql output of hookpipe.
package sql
