// Command lincheck checks a recorded client history of a key-value store for linearizability
// with porcupine.
//
// It reads a JSON list of operations on stdin and prints one JSON verdict on stdout:
//
//	[{"client_id": "w1", "kind": "put", "key": "k", "value": "1", "expected": "",
//	  "invoke_ns": 10, "return_ns": 20, "outcome": "ok", "applied": true}, ...]
//
// kind is put, get or cas; outcome is ok, fail or unknown. A get's value is the value read
// ("" = key absent). A cas writes value when the key's value equals expected; an ok cas must
// say in "applied" whether the compare held. A put or cas that failed or timed out counts as
// maybe applied; a get that failed tells nothing and is dropped.
//
// Exit status: 0 with a verdict (ok, illegal or unknown), 2 on bad input or flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

type recordedOp struct {
	ClientID string `json:"client_id"`
	Kind     string `json:"kind"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	Expected string `json:"expected"`
	InvokeNs int64  `json:"invoke_ns"`
	ReturnNs int64  `json:"return_ns"`
	Outcome  string `json:"outcome"`
	Applied  *bool  `json:"applied"`
}

type verdict struct {
	Result        string  `json:"result"` // "ok" | "illegal" | "unknown"
	Ops           int     `json:"ops"`
	KeysChecked   int     `json:"keys_checked"`
	DroppedReads  int     `json:"dropped_reads"`
	MaybeApplied  int     `json:"maybe_applied"`
	Seconds       float64 `json:"seconds"`
	Key           *string `json:"key,omitempty"`
	FailingKeys   int     `json:"failing_keys,omitempty"`
	Description   string  `json:"description,omitempty"`
	Visualization string  `json:"visualization,omitempty"`
}

func main() {
	timeout := flag.Duration("timeout", 10*time.Second, "give up with result \"unknown\" after this long (0 = no limit)")
	vizPath := flag.String("viz", "", "also write porcupine's HTML visualization to this file")
	flag.Parse()
	if flag.NArg() != 0 || *timeout < 0 {
		fmt.Fprintln(os.Stderr, "usage: lincheck [-timeout 10s] [-viz FILE] < history.json")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout, *timeout, *vizPath); err != nil {
		fmt.Fprintln(os.Stderr, "lincheck:", err)
		os.Exit(2)
	}
}

func run(stdin io.Reader, stdout io.Writer, timeout time.Duration, vizPath string) error {
	var recorded []recordedOp
	decoder := json.NewDecoder(stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&recorded); err != nil {
		return fmt.Errorf("history on stdin is not a JSON list of operations: %w", err)
	}
	history, dropped, maybe, err := toPorcupine(recorded)
	if err != nil {
		return err
	}
	keys, partitions := partitionByKey(history)
	started := time.Now()
	result, info := porcupine.CheckOperationsVerbose(registerModel, history, timeout)
	out := verdict{
		Ops:          len(history),
		KeysChecked:  len(keys),
		DroppedReads: dropped,
		MaybeApplied: maybe,
		Seconds:      time.Since(started).Seconds(),
	}
	switch result {
	case porcupine.Ok:
		out.Result = "ok"
	case porcupine.Illegal:
		out.Result = "illegal"
		describeFailure(&out, keys, partitions, info, timeout)
	default:
		out.Result = "unknown"
		out.Description = fmt.Sprintf("the check did not finish within %s", timeout)
	}
	if vizPath != "" && len(history) > 0 {
		if err := porcupine.VisualizePath(registerModel, info, vizPath); err != nil {
			return fmt.Errorf("writing the visualization to %s: %w", vizPath, err)
		}
		out.Visualization = vizPath
	}
	encoder := json.NewEncoder(stdout)
	encoder.SetIndent("", "  ")
	encoder.SetEscapeHTML(false)
	return encoder.Encode(out)
}

// toPorcupine validates the recorded operations and turns them into porcupine's, dropping
// reads that failed and giving maybe-applied writes an infinite return time.
func toPorcupine(recorded []recordedOp) (history []porcupine.Operation, dropped, maybe int, err error) {
	var latest int64
	for i, op := range recorded {
		if err := validate(op); err != nil {
			return nil, 0, 0, fmt.Errorf("operation %d (client %q, key %q): %w", i, op.ClientID, op.Key, err)
		}
		latest = max(latest, op.ReturnNs)
	}
	// Porcupine draws one lane per ClientId. A client moves to a fresh lane after a maybe-applied
	// write, whose interval stays open to the end, so every lane stays sequential.
	order := make([]int, len(recorded))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return recorded[order[a]].InvokeNs < recorded[order[b]].InvokeNs })
	lanes, nextLane := map[string]int{}, 0
	for _, i := range order {
		op := recorded[i]
		isMaybe := op.Outcome != "ok"
		if isMaybe && op.Kind == "get" {
			dropped++
			continue
		}
		lane, seen := lanes[op.ClientID]
		if !seen {
			lane, nextLane = nextLane, nextLane+1
		}
		lanes[op.ClientID] = lane
		returned := op.ReturnNs
		if isMaybe {
			maybe++
			returned = latest + 1
			lanes[op.ClientID], nextLane = nextLane, nextLane+1
		}
		history = append(history, porcupine.Operation{
			ClientId: lane,
			Input:    input{kind: op.Kind, key: op.Key, value: op.Value, expected: op.Expected},
			Call:     op.InvokeNs,
			Output:   output{value: op.Value, applied: op.Applied != nil && *op.Applied, maybe: isMaybe},
			Return:   returned,
			Metadata: opMeta{client: op.ClientID},
		})
	}
	return history, dropped, maybe, nil
}

func validate(op recordedOp) error {
	switch {
	case op.Kind != "put" && op.Kind != "get" && op.Kind != "cas":
		return fmt.Errorf("kind %q is not put, get or cas", op.Kind)
	case op.Outcome != "ok" && op.Outcome != "fail" && op.Outcome != "unknown":
		return fmt.Errorf("outcome %q is not ok, fail or unknown", op.Outcome)
	case op.ReturnNs < op.InvokeNs:
		return fmt.Errorf("return_ns %d is before invoke_ns %d", op.ReturnNs, op.InvokeNs)
	case op.Kind == "cas" && op.Outcome == "ok" && op.Applied == nil:
		return errors.New(`an ok cas must say in "applied" whether the compare held`)
	}
	return nil
}

// describeFailure names the smallest partition that was not linearized and the operations that
// could not be placed after its longest linearizable prefix.
func describeFailure(out *verdict, keys []string, partitions [][]porcupine.Operation, info porcupine.LinearizationInfo, timeout time.Duration) {
	partials := info.PartialLinearizations()
	failing := -1
	prefixOf := map[int][]int{}
	for i, partition := range partitions {
		var longest []int
		for _, partial := range partials[i] {
			if len(partial) > len(longest) {
				longest = partial
			}
		}
		if len(longest) == len(partition) {
			continue
		}
		out.FailingKeys++
		prefixOf[i] = longest
		if failing < 0 || len(partition) < len(partitions[failing]) {
			failing = i
		}
	}
	if failing < 0 {
		out.Description = "porcupine found the history illegal but every partition was linearized"
		return
	}
	key, partition, prefix := keys[failing], partitions[failing], prefixOf[failing]
	out.Key = &key
	placed := map[int]bool{}
	var state interface{} = registerModel.Init()
	for _, id := range prefix {
		placed[id] = true
		_, state = registerModel.Step(state, partition[id].Input, partition[id].Output)
	}
	var stuck []porcupine.Operation
	for id, op := range partition {
		if !placed[id] {
			stuck = append(stuck, op)
		}
	}
	sort.SliceStable(stuck, func(a, b int) bool { return stuck[a].Call < stuck[b].Call })
	const shown = 3
	lines := make([]string, 0, shown)
	for _, op := range stuck[:min(shown, len(stuck))] {
		returned := seconds(op.Return)
		if op.Output.(output).maybe {
			returned = "open"
		}
		lines = append(lines, fmt.Sprintf("%s by %s [%s, %s]",
			describeOp(op.Input.(input), op.Output.(output)), op.Metadata.(opMeta).client,
			seconds(op.Call), returned))
	}
	out.Description = fmt.Sprintf(
		"key %q: %d of its %d operations linearize (value then %s); none of the other %d can come next, earliest: %s",
		key, len(prefix), len(partition), describeValue(state.(string)), len(stuck), strings.Join(lines, "; "))
	if out.Seconds >= timeout.Seconds() && timeout > 0 {
		out.Description += " (the timeout cut some partitions short: they may be counted as failing)"
	}
}

func seconds(ns int64) string {
	return fmt.Sprintf("%.6fs", float64(ns)/1e9)
}
