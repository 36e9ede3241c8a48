// Package s3 provides the s3 output of hookpipe.
package s3
