// This folder is a Node.js package, not Go. The go.mod keeps its
// node_modules (some ship Go sources) out of `go test ./...`.
module github.com/statusflow/statusflow/nodes/check

go 1.26
