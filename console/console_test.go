package console_test

import (
	"testing"

	"github.com/statusflow/statusflow/console"
)

// TestFiles_FirstLoadSize checks the console's first load (HTML, JS, CSS,
// compressed as served) stays under 150 KB.
func TestFiles_FirstLoadSize(t *testing.T) {
	files, err := console.Files()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range []string{"/console/index.html", "/console/app.js", "/console/app.css"} {
		f := files[p]
		if f == nil {
			t.Fatalf("%s is not embedded", p)
		}
		t.Logf("%s: %d bytes, %d gzip", p, len(f.Plain), len(f.Gzip))
		total += len(f.Gzip)
	}
	t.Logf("first load: %d bytes compressed", total)
	if total >= 150_000 {
		t.Fatalf("first load is %d bytes compressed, over 150 KB", total)
	}
	for _, p := range []string{"/docs/index.html", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"} {
		if files[p] == nil || len(files[p].Plain) == 0 {
			t.Fatalf("%s is not embedded", p)
		}
	}
}
