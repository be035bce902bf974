package media

import "os"

// SetOpenFile replaces how downloads create their file (tests: /dev/full).
func SetOpenFile(p *Pipeline, f func(path string) (*os.File, error)) { p.openFile = f }
