// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus library computes for Kubernetes
// objects: the status Flux, kpt and cli-utils wait on (InProgress, Current, Failed, Terminating,
// NotFound, Unknown) and its message. kubetune's integration tests run it against live
// FineTuneJobs, ModelDeployments and Adapters so the conditions the operator writes are judged
// by the real library, not by a Python copy of its rules.
//
// Input on stdin: one JSON object, or a JSON array of objects, or a List (items[]).
// Output on stdout: one JSON line per object, {"name", "kind", "status", "message"}.
// Exit status 1 when the input is not JSON or the library returns an error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// objects decodes stdin with apimachinery's JSON decoder, which keeps whole numbers as int64
// as the API machinery does (encoding/json's float64 would make kstatus refuse
// metadata.generation).
func objects(data []byte) ([]map[string]interface{}, error) {
	var many []map[string]interface{}
	if err := utiljson.Unmarshal(data, &many); err == nil {
		return many, nil
	}
	var one map[string]interface{}
	if err := utiljson.Unmarshal(data, &one); err != nil {
		return nil, fmt.Errorf("stdin is neither a JSON object nor an array of objects: %w", err)
	}
	if items, ok := one["items"].([]interface{}); ok && one["kind"] != nil {
		for _, it := range items {
			obj, ok := it.(map[string]interface{})
			if !ok {
				return nil, fmt.Errorf("items[] holds a %T, not an object", it)
			}
			many = append(many, obj)
		}
		return many, nil
	}
	return []map[string]interface{}{one}, nil
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(1)
	}
	objs, err := objects(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	for _, obj := range objs {
		u := &unstructured.Unstructured{Object: obj}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s %s: %v\n", u.GetKind(), u.GetName(), err)
			os.Exit(1)
		}
		if err := out.Encode(result{Kind: u.GetKind(), Name: u.GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: writing stdout:", err)
			os.Exit(1)
		}
	}
}
