// Package kafka registers hookpipe's kafka_franz output: a Kafka producer
// built on franz-go whose configuration is a compatible subset of Redpanda
// Connect's output of the same name, so a pipeline written for one runs on the
// other. Its one addition, cloudevents_headers, copies the attributes of a
// CloudEvents structured JSON envelope into ce_* record headers.
package kafka
