//go:build !race

package e2e

// kafkaEvents is how many events each Kafka scenario sends.
const kafkaEvents = 100_000
