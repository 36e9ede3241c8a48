// Package kafka provides the kafka output of hookpipe.
package kafka
