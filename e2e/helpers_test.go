package e2e

import (
	"github.com/logweave/logweave/inputs/tail"
	"github.com/tidwall/gjson"
)

func defaultTail() tail.Config { return tail.DefaultConfig() }

func gjsonGet(doc []byte, path string) string { return gjson.GetBytes(doc, path).String() }
