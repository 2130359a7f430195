package jitter

import (
	"testing"
	"time"
)

func TestEqualStaysBetweenHalfAndAll(t *testing.T) {
	d := 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := Equal(d)
		if j < d/2 || j > d {
			t.Fatalf("Equal(%s) = %s, outside [%s, %s]", d, j, d/2, d)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays in 1000: not random", len(seen))
	}
}
