// Package clock holds the one context-aware sleep of the repository: every
// driver, the technician's tools and the link's backoff wait through Sleep,
// so that a wait always ends with its context. The fake clock tests inject
// is internal/clocktest.
//
// It imports the standard library only; nothing else in the repository may
// be imported from here.
package clock

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first. It returns
// ctx.Err() if ctx ended, else nil.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
