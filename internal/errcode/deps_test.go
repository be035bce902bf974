package errcode_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLowPackagesLinkNoDriver guards why errcode exists: schemas, media and
// errcode itself return coded errors without linking a database driver or
// whatsmeow (issue 17 §3).
func TestLowPackagesLinkNoDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "../errcode", "../../schemas", "../media").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/jackc/pgx", "modernc.org/sqlite", "go.mau.fi/", "statusflow/internal/store", "statusflow/internal/status"} {
			if strings.Contains(dep, bad) {
				t.Errorf("a low package links %s", dep)
			}
		}
	}
}

// TestErrcodeImportsOnlyTheStandardLibrary: the vocabulary is a leaf.
func TestErrcodeImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "github.com/statusflow/statusflow/internal/errcode" {
		t.Errorf("errcode's non-standard dependencies = %v, want only itself", got)
	}
}
