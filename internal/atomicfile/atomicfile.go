// Package atomicfile replaces a file so that a power cut leaves either the
// old content or the new one, never a mix: a temporary file in the same
// directory is written, synced, renamed over the target, and the directory
// synced. It touches only the target path and its temporary sibling.
package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data. Mode 0 sets no mode (a FAT boot
// partition has none).
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	return Write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what fill writes. An error from fill leaves
// path untouched.
func Write(path string, mode fs.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
