// Package s3 registers the aws_s3 output: each message that reaches it becomes
// one object in an S3 bucket (AWS or any S3-compatible store), written with a
// PutObject call and acknowledged only once the store has acknowledged the PUT.
//
// Its configuration fields are a compatible subset of Redpanda Connect's
// aws_s3 output (same names, defaults and meaning), so a pipeline that uses it
// runs unchanged on either distribution. The client is the AWS SDK for Go v2.
package s3
