// Package kafkatest gives tests a Kafka cluster: the brokers named by
// KAFKA_BROKERS when set (a real cluster; each test gets a fresh topic), else
// an in-process Kafka protocol broker (franz-go's kfake) on loopback.
package kafkatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

var seq atomic.Int64

// Cluster is a Kafka cluster with one topic for the test.
type Cluster struct {
	Brokers    []string
	Topic      string
	Partitions int
}

// Start returns a cluster with a topic of the given partitions.
func Start(t testing.TB, partitions int) *Cluster { return StartOn(t, partitions, "127.0.0.1") }

// StartOn is Start with the in-process broker listening on (and
// advertising) host, e.g. a Docker network's gateway so containers reach
// it.
func StartOn(t testing.TB, partitions int, host string) *Cluster {
	t.Helper()
	topic := fmt.Sprintf("logweave-test-%d-%d", time.Now().UnixNano(), seq.Add(1))
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		c := &Cluster{Brokers: strings.Split(env, ","), Topic: topic, Partitions: partitions}
		conn, err := kgo.Dial("tcp", c.Brokers[0])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctrl, err := conn.Controller()
		if err != nil {
			t.Fatal(err)
		}
		cc, err := kgo.Dial("tcp", fmt.Sprintf("%s:%d", ctrl.Host, ctrl.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if err := cc.CreateTopics(kgo.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, net.JoinHostPort(host, "0")) }
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topic), kfake.ListenFn(listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return &Cluster{Brokers: kc.ListenAddrs(), Topic: topic, Partitions: partitions}
}

// Committed returns the group's committed offsets summed over partitions
// (partitions without a commit count 0), and the high watermarks' sum.
func (c *Cluster) Committed(t testing.TB, group string) (committed, end int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := &kgo.Client{Addr: kgo.TCP(c.Brokers...), Timeout: 10 * time.Second}
	parts := make([]int, c.Partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := cl.OffsetFetch(ctx, &kgo.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{c.Topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[c.Topic] {
		if p.CommittedOffset > 0 {
			committed += p.CommittedOffset
		}
	}
	reqs := make([]kgo.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kgo.LastOffsetOf(p))
	}
	lo, err := cl.ListOffsets(ctx, &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{c.Topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lo.Topics[c.Topic] {
		end += p.LastOffset
	}
	return committed, end
}

// Records returns every record of the topic, as its key, headers and
// value joined (for tests that look for bytes in what Kafka holds).
func (c *Cluster) Records(t testing.TB) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := &kgo.Client{Addr: kgo.TCP(c.Brokers...), Timeout: 10 * time.Second}
	reqs := make([]kgo.OffsetRequest, 0, c.Partitions)
	for p := range c.Partitions {
		reqs = append(reqs, kgo.LastOffsetOf(p))
	}
	lo, err := cl.ListOffsets(ctx, &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{c.Topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, p := range lo.Topics[c.Topic] {
		if p.LastOffset <= 0 {
			continue
		}
		r := kgo.NewReader(kgo.ReaderConfig{Brokers: c.Brokers, Topic: c.Topic, Partition: p.Partition, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d: %v", p.Partition, err)
			}
			rec := append([]byte(nil), m.Key...)
			for _, h := range m.Headers {
				rec = append(append(append(rec, '\n'), h.Key...), h.Value...)
			}
			out = append(out, append(append(rec, '\n'), m.Value...))
			if m.Offset >= p.LastOffset-1 {
				break
			}
		}
		r.Close()
	}
	return out
}
