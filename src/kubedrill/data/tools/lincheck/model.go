package main

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// input is what a client asked for; output is what it was told.
type input struct {
	kind     string // "put" | "get" | "cas"
	key      string
	value    string // put, cas: the value written
	expected string // cas: the value the compare requires ("" = key absent)
}

type output struct {
	value   string // get: the value read ("" = key absent)
	applied bool   // cas answered: whether the compare held and the value was written
	// A write that failed or timed out may still have been applied. Its return time is set after
	// every other operation, so the checker may place it anywhere from its invocation on,
	// including after the end of the history, where it is never observed.
	maybe bool
}

// opMeta rides along in porcupine's Metadata for the visualization and the failure description.
type opMeta struct {
	client string
}

// registerModel is a key-value store partitioned by key: each partition is one register whose
// state is its value, "" when the key is absent.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		_, partitions := partitionByKey(history)
		return partitions
	},
	Init: func() interface{} { return "" },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		return step(state.(string), in.(input), out.(output))
	},
	Equal:                     func(a, b interface{}) bool { return a.(string) == b.(string) },
	DescribeOperation:         func(in, out interface{}) string { return describeOp(in.(input), out.(output)) },
	DescribeState:             func(state interface{}) string { return describeValue(state.(string)) },
	DescribeOperationMetadata: func(meta interface{}) string { return "client " + meta.(opMeta).client },
}

func step(state string, in input, out output) (bool, interface{}) {
	switch in.kind {
	case "put":
		return true, in.value
	case "get":
		return out.value == state, state
	case "cas":
		holds := state == in.expected
		if out.maybe {
			// Had it executed here, it would have written exactly when the compare held.
			if holds {
				return true, in.value
			}
			return true, state
		}
		if out.applied {
			return holds, in.value
		}
		return !holds, state
	}
	panic("unknown kind " + in.kind) // input is validated before checking
}

// partitionByKey groups operations by key, keys in sorted order, so that the caller and the
// checker see the partitions in the same order.
func partitionByKey(history []porcupine.Operation) ([]string, [][]porcupine.Operation) {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		key := op.Input.(input).key
		byKey[key] = append(byKey[key], op)
	}
	keys := make([]string, 0, len(byKey))
	for key := range byKey {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	partitions := make([][]porcupine.Operation, len(keys))
	for i, key := range keys {
		partitions[i] = byKey[key]
	}
	return keys, partitions
}

func describeValue(value string) string {
	if value == "" {
		return "(absent)"
	}
	return fmt.Sprintf("%q", value)
}

func describeOp(in input, out output) string {
	var text string
	switch in.kind {
	case "put":
		text = fmt.Sprintf("put(%q)", in.value)
	case "get":
		text = "get() -> " + describeValue(out.value)
	case "cas":
		text = fmt.Sprintf("cas(%s -> %q)", describeValue(in.expected), in.value)
		if !out.maybe {
			if out.applied {
				text += " -> applied"
			} else {
				text += " -> compare failed"
			}
		}
	}
	if out.maybe {
		text += " (maybe applied)"
	}
	return text
}
