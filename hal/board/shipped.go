package board

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// shipped holds the board files of the cabinet models Bangfu builds, so the
// binary can start from one without a file on the card and tests load them.
//
//go:embed boards/*.yaml
var shipped embed.FS

// Shipped returns the names of the board files built into the binary
// ("rpi4-fridge-2door.yaml", …), sorted.
func Shipped() []string {
	ents, err := fs.ReadDir(shipped, "boards")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// LoadShipped parses the built-in board file name (with or without .yaml).
func LoadShipped(name string) (*Board, error) {
	if path.Ext(name) == "" {
		name += ".yaml"
	}
	data, err := shipped.ReadFile(path.Join("boards", path.Base(name)))
	if err != nil {
		return nil, fmt.Errorf("board: no built-in board %q (have %v)", name, Shipped())
	}
	return Parse(name, data)
}
