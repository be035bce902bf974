// Command nodegen writes what the platform packages take from the node
// catalog: integrations/n8n/nodes/Statusflow/generated.ts (the n8n node's
// resources, operations and parameters, the credential's fields, the
// trigger's events) and integrations/zapier/generated/app.json (the Zapier
// app's fields, creates and triggers). The server's renderer (package nodes)
// is the only place a JSON Schema becomes platform fields; run this after
// changing a schema or the catalog:
//
//	go run ./cmd/nodegen          # rewrite the files
//	go run ./cmd/nodegen -check   # exit 1 if a committed file is stale
//
// nodes.TestPackageFiles_Current fails when the committed files differ.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/statusflow/statusflow/nodes"
)

func main() {
	check := flag.Bool("check", false, "only report files that differ from the rendering")
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files, err := nodes.PackageFiles(nodes.Default(nil, nil))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodegen:", err)
		os.Exit(1)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	stale := 0
	for _, p := range paths {
		full := filepath.Join(*root, filepath.FromSlash(p))
		old, _ := os.ReadFile(full)
		if bytes.Equal(old, files[p]) {
			continue
		}
		stale++
		if *check {
			fmt.Fprintf(os.Stderr, "nodegen: %s is stale (run go run ./cmd/nodegen)\n", p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "nodegen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "nodegen:", err)
			os.Exit(1)
		}
		fmt.Println("nodegen: wrote", p)
	}
	if *check && stale > 0 {
		os.Exit(1)
	}
}
