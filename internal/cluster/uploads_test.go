package cluster_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
)

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for y := range 64 {
		for x := range 96 {
			img.Set(x, y, color.RGBA{uint8(x * 2), uint8(y * 3), 120, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A file uploaded through a replica that does not own the instance is
// readable on every replica and publishes on the owner (the JetStream
// object store, not the receiving replica's disk); once published it is
// gone everywhere. The sandbox's copy of what it sent lives on the owner's
// disk and is served through any replica (forwarded).
func TestUploads_SharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 2, LeaseTTL: 6 * time.Second})
	owner, b := c.Replicas[0], c.Replicas[1]
	tok := owner.CreateInstance("media", "sandbox")
	if got := c.Owner("media"); got != owner.ID {
		t.Fatalf("owner = %q, want %s", got, owner.ID)
	}
	file := testPNG(t)
	r := b.Do("POST", "/api/media/media", tok, file, "Content-Type", "image/png")
	if r.Code != 201 {
		t.Fatalf("upload via %s: %d %s", b.ID, r.Code, r.Raw)
	}
	url, _ := r.Data()["mediaUrl"].(string)
	id, _ := r.Data()["id"].(string)
	path := url[strings.Index(url, "/api/media/"):]
	for _, x := range []*apptest.Replica{owner, b} {
		g := x.Do("GET", path, tok, nil)
		if g.Code != 200 || !bytes.Equal(g.Raw, file) || g.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET %s via %s: %d %s, %d bytes", path, x.ID, g.Code, g.Header.Get("Content-Type"), len(g.Raw))
		}
	}
	r = owner.Do("POST", "/api/message/status/media", tok, map[string]any{"type": "image", "mediaUrl": url, "message": "uploaded via " + b.ID})
	if r.Code != 200 {
		t.Fatalf("publish on the owner %s of an upload via %s: %d %s", owner.ID, b.ID, r.Code, r.Raw)
	}
	msgID, _ := r.Data()["messageId"].(string)
	for _, x := range []*apptest.Replica{owner, b} {
		if g := x.Do("GET", path, tok, nil); g.Code != 404 {
			t.Fatalf("GET %s via %s after publishing: %d, want 404 (used)", path, x.ID, g.Code)
		}
	}
	// The sandbox's JPEG is on the owner's disk; b forwards.
	g := b.Do("GET", "/api/sandbox/media/media/"+msgID, tok, nil)
	if g.Code != 200 || g.Header.Get("Content-Type") != "image/jpeg" || len(g.Raw) < 100 {
		t.Fatalf("sandbox media via %s: %d %s %d bytes", b.ID, g.Code, g.Header.Get("Content-Type"), len(g.Raw))
	}
	// Through a non-owner, too: upload on the owner, publish via b.
	r = owner.Do("POST", "/api/media/media", tok, file, "Content-Type", "image/png")
	if r.Code != 201 {
		t.Fatalf("upload via %s: %d %s", owner.ID, r.Code, r.Raw)
	}
	if r.Data()["id"] == id {
		t.Fatal("two uploads got the same id")
	}
	r = b.Do("POST", "/api/message/status/media", tok, map[string]any{"type": "image", "mediaUrl": r.Data()["mediaUrl"]})
	if r.Code != 200 {
		t.Fatalf("publish via %s: %d %s", b.ID, r.Code, r.Raw)
	}
}
