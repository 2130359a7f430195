//go:build race

package e2e

// The race detector slows Kafka clients and brokers about tenfold: under
// -race the Kafka scenarios run with fewer events (the same paths, the same
// assertions); `make test` also runs this package without -race at full size.
const kafkaEvents = 10_000
