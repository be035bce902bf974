package whatsapp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// SandboxMedia keeps, per sandbox instance, the plaintext file each
// recorded status would have uploaded (the JPEG, MP4 or OGG/Opus after the
// media pipeline), so the console can play it. Files are content-addressed:
// Dir/<instance>/<file sha256 hex>, the hash the recorded message carries
// (fileSHA256), because Upload runs before the message id is bound to the
// file. The database row stays what counts: the file is written before the
// record, and a missing file only means no preview.
type SandboxMedia struct {
	// Dir is the root, <data dir>/sandbox.
	Dir string
	// MaxBytes bounds a kept file (the media size cap); larger files are
	// not kept.
	MaxBytes int64
}

// ErrSandboxMediaName is returned for an instance name or hash that cannot
// name a file under Dir.
var ErrSandboxMediaName = errors.New("whatsapp: invalid sandbox media name")

var (
	sandboxInstanceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	sandboxSHA256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func (m *SandboxMedia) instanceDir(instance string) (string, error) {
	if m == nil || m.Dir == "" {
		return "", os.ErrNotExist
	}
	// The name reaches the filesystem: only a plain name, never "..".
	if !sandboxInstanceName.MatchString(instance) || instance == "." || instance == ".." {
		return "", ErrSandboxMediaName
	}
	return filepath.Join(m.Dir, instance), nil
}

// Path is where instance's file with plaintext SHA-256 shaHex lives.
func (m *SandboxMedia) Path(instance, shaHex string) (string, error) {
	dir, err := m.instanceDir(instance)
	if err != nil {
		return "", err
	}
	if !sandboxSHA256Hex.MatchString(shaHex) {
		return "", ErrSandboxMediaName
	}
	return filepath.Join(dir, shaHex), nil
}

// keep streams r through enc (the media encryption) while copying it to a
// temporary file, then renames the file to its hash. A failure to keep the
// file is not an upload failure: the preview is best effort.
func (m *SandboxMedia) keep(instance string, r io.Reader, size int64, enc func(io.Reader) (*Upload, error)) (*Upload, error) {
	dir, err := m.instanceDir(instance)
	if err != nil || (m.MaxBytes > 0 && size > m.MaxBytes) {
		return enc(r)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return enc(r)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return enc(r)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	w := &capWriter{w: f, left: m.MaxBytes}
	up, err := enc(io.TeeReader(r, w))
	cerr := f.Close()
	if err != nil {
		return nil, err
	}
	if w.err == nil && cerr == nil {
		if p, perr := m.Path(instance, hex.EncodeToString(up.FileSHA256)); perr == nil {
			_ = os.Rename(tmp, p)
		}
	}
	return up, nil
}

// RemoveInstance deletes an instance's kept files (instance deleted).
func (m *SandboxMedia) RemoveInstance(instance string) error {
	dir, err := m.instanceDir(instance)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("sandbox media %s: %w", instance, err)
	}
	return nil
}

// capWriter writes to w until left bytes (0: no cap) are exceeded, then
// records an error and drops the rest, never failing the tee (the upload
// must not fail because the preview copy did).
type capWriter struct {
	w    io.Writer
	left int64
	err  error
	n    int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return len(p), nil
	}
	c.n += int64(len(p))
	if c.left > 0 && c.n > c.left {
		c.err = errors.New("sandbox media: over the size cap")
		return len(p), nil
	}
	if _, err := c.w.Write(p); err != nil {
		c.err = err
	}
	return len(p), nil
}
