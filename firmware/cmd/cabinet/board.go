package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/bangfu/cabinet/firmware/tech"
	"github.com/bangfu/cabinet/hal/board"
)

// errNotWired is openBoard's answer until the drivers are wired in.
var errNotWired = errors.New("cabinet: board files are not wired to the hardware drivers in this build yet; use --hal sim")

// openBoard opens the hardware a board file describes and returns it as a
// technician's rig with the function that halts it. The wiring step
// replaces this stub: it builds hal/lock, hal/door, hal/hx711, hal/st7789 or
// hal/fbdev, hal/ds18b20 and hal/indicator devices from the board's
// settings. Until then the file is validated, so a technician still learns
// whether it is correct.
func openBoard(ctx context.Context, path string) (tech.Rig, func() error, error) {
	b, err := board.Load(path)
	if err != nil {
		return tech.Rig{}, nil, err
	}
	return tech.Rig{}, nil, fmt.Errorf("%s (%s) is valid: %w", path, b.Model, errNotWired)
}
