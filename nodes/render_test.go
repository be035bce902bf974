package nodes_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statusflow/statusflow/nodes"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares v, as indented JSON, with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, v any) []byte {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./nodes -run Render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering; run go test ./nodes -run Render -update and review the diff\n%s", path, got)
	}
	return got
}

func TestRenderN8n_Golden(t *testing.T) {
	t.Parallel()
	c := nodes.Default(nil, nil)
	for _, d := range c.List() {
		t.Run(d.ID, func(t *testing.T) {
			t.Parallel()
			n, err := nodes.RenderN8n(c, d)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "n8n."+d.ID+".json", n)
		})
	}
}

func TestRenderZapier_Golden(t *testing.T) {
	t.Parallel()
	c := nodes.Default(nil, nil)
	for _, d := range c.List() {
		t.Run(d.ID, func(t *testing.T) {
			t.Parallel()
			z, err := nodes.RenderZapier(c, d)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "zapier."+d.ID+".json", z)
		})
	}
}

// TestZapierApp_Golden writes the whole app and every n8n description that
// integrations/check/run.sh validates with the real npm packages.
func TestZapierApp_Golden(t *testing.T) {
	t.Parallel()
	c := nodes.Default(nil, nil)
	app, err := nodes.ZapierApp(c, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "zapier.app.json", app)
}

// TestCatalog_Views keeps testdata/nodes.json, GET /api/nodes's descriptors,
// which integrations/check reads for the samples.
func TestCatalog_Views(t *testing.T) {
	t.Parallel()
	c := nodes.Default(nil, nil)
	var views []nodes.View
	for _, d := range c.List() {
		views = append(views, c.View(d))
	}
	golden(t, "nodes.json", views)
}

func TestRenderN8nCredential_Golden(t *testing.T) {
	t.Parallel()
	cred, err := nodes.RenderN8nCredential(nodes.Default(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Name != nodes.CredentialName || len(cred.Properties) != 2 {
		t.Fatalf("%+v", cred)
	}
	golden(t, "n8n.credential.statusflowApi.json", cred)
}

// TestPackageFiles_Current checks that the files the platform packages
// consume (integrations/…, written by cmd/nodegen) are what the renderer
// produces now: a schema or catalog change without `go run ./cmd/nodegen`
// fails here.
func TestPackageFiles_Current(t *testing.T) {
	t.Parallel()
	files, err := nodes.PackageFiles(nodes.Default(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d files", len(files))
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%v (run go run ./cmd/nodegen)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the renderer's output: run go run ./cmd/nodegen and review the diff", p)
		}
	}
}

// TestRenderN8n_BooleanDescriptions holds the schemas to n8n's lint rule
// node-param-description-boolean-without-whether: every boolean parameter
// the renderer makes for n8n says "Whether …". The schema is where the
// description is written, so a schema change is caught here, before the
// n8n package's lint runs.
func TestRenderN8n_BooleanDescriptions(t *testing.T) {
	t.Parallel()
	c := nodes.Default(nil, nil)
	for _, d := range c.List() {
		n, err := nodes.RenderN8n(c, d)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if v["type"] == "boolean" {
					if desc, ok := v["description"].(string); ok && !strings.HasPrefix(desc, "Whether") {
						t.Errorf("%s: boolean parameter %v: description must start with 'Whether' (n8n lint): %q", d.ID, v["name"], desc)
					}
				}
				for _, e := range v {
					walk(e)
				}
			case []any:
				for _, e := range v {
					walk(e)
				}
			}
		}
		walk(doc)
	}
}
