//go:build !linux

package files

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dirHandle only names a directory here; files are opened by full path.
type dirHandle struct{ path string }

func (d *dirHandle) release() {}

// dirCloser has nothing to close here: the walk keeps no directory open.
type dirCloser struct{}

func (c *dirCloser) closeAll() {}

// walkRoot walks one path argument with filepath.WalkDir: a file, or a
// directory recursively, skipping .git directories below it. Symbolic
// links to files are followed, links to directories are not.
func walkRoot(ctx context.Context, root string, needSize bool, _ *dirCloser, emit func(fileJob), addErr func(error)) {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			addErr(fmt.Errorf("walk %s: %w", path, err))
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".git" && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		// The directory entry's type needs no system call; only symlinks
		// (followed) and a wanted size need a stat.
		var size int64
		if !d.Type().IsRegular() || needSize {
			info, err := os.Stat(path)
			if err != nil {
				addErr(fmt.Errorf("stat %s: %w", path, err))
				return nil
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			size = info.Size()
		}
		emit(fileJob{path: path, size: size})
		return nil
	})
	if err != nil && ctx.Err() == nil {
		addErr(fmt.Errorf("walk %s: %w", root, err))
	}
}
