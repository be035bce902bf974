// Package console holds the web console (a single page on the public API)
// and the interactive API reference, embedded in the binary: no CDN, works
// offline. Files are served gzip-compressed from memory.
package console

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"mime"
	"path"
	"strings"
)

//go:embed static docs
var files embed.FS

// File is one embedded file, ready to serve.
type File struct {
	ContentType string
	// Gzip is the compressed body; Plain the original (for clients that do
	// not accept gzip).
	Gzip, Plain []byte
}

// Files maps URL paths (/console/app.js, /docs/init.js, …) to files.
// Files stored compressed (*.gz, the Swagger UI bundle) keep their gzip
// bytes; the others are compressed once here.
func Files() (map[string]*File, error) {
	out := map[string]*File{}
	for _, root := range []struct{ dir, prefix string }{{"static", "/console/"}, {"docs", "/docs/"}} {
		err := fs.WalkDir(files, root.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			name := strings.TrimPrefix(p, root.dir+"/")
			f := &File{}
			if strings.HasSuffix(name, ".gz") {
				name = strings.TrimSuffix(name, ".gz")
				f.Gzip = b
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					return err
				}
				if f.Plain, err = io.ReadAll(zr); err != nil {
					return err
				}
			} else {
				f.Plain = b
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
				zw.Write(b)
				zw.Close()
				f.Gzip = buf.Bytes()
			}
			f.ContentType = mime.TypeByExtension(path.Ext(name))
			if f.ContentType == "" {
				f.ContentType = "text/plain; charset=utf-8"
			}
			out[root.prefix+name] = f
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
