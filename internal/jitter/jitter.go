// Package jitter holds the retry delay the outputs share.
package jitter

import (
	"math/rand/v2"
	"time"
)

// Equal is d with "equal jitter": half of it fixed, half random, so
// senders that failed together do not retry together.
func Equal(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
