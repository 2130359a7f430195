package e2e

import "github.com/logweave/logweave/inputs/tail"

func defaultTail() tail.Config { return tail.DefaultConfig() }
