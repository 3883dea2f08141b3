package tech

import (
	"context"
	"fmt"
	"sync"

	"github.com/bangfu/cabinet/hal/sim"
)

// SimHand is the technician's hands on a virtual cabinet: it does what each
// prompt asks on the sim.Cabinet (opens and closes doors, puts reference
// weights on shelves), then passes the prompt on to Next, who answers the
// questions. It makes `cabinet diag --hal sim` and the tests run without a
// person.
type SimHand struct {
	Cab  *sim.Cabinet
	Next Prompter

	mu     sync.Mutex
	placed map[int]float64 // grams of reference weights on each shelf
	// Errs collects what the hand could not do (a jammed door does not
	// open); the procedure notices from the hardware, as with a person.
	errs []error
}

// NewSimHand returns a hand on c passing prompts to next.
func NewSimHand(c *sim.Cabinet, next Prompter) *SimHand {
	return &SimHand{Cab: c, Next: next, placed: map[int]float64{}}
}

// Errs returns what the hand failed to do, oldest first.
func (h *SimHand) Errs() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

func (h *SimHand) note(err error) {
	if err != nil {
		h.mu.Lock()
		h.errs = append(h.errs, err)
		h.mu.Unlock()
	}
}

// act does what p asks on the cabinet.
func (h *SimHand) act(p Prompt) error {
	switch p.Kind {
	case KindOpenDoor:
		h.note(h.Cab.OpenDoor(p.Door, false))
	case KindCloseDoor:
		h.note(h.Cab.CloseDoor(p.Door))
	case KindEmptyShelf:
		h.note(h.Cab.OpenDoor(p.Door, false))
	case KindPlaceWeight:
		h.note(h.Cab.OpenDoor(p.Door, false))
		h.mu.Lock()
		add := p.Grams - h.placed[p.Shelf]
		h.mu.Unlock()
		if add < 0 {
			// sim can add objects to a shelf but not take them off.
			return fmt.Errorf("tech: sim hand: cannot go down from %v g to %v g on shelf %d", p.Grams+(-add), p.Grams, p.Shelf)
		}
		if add > 0 {
			if err := h.Cab.PutObject(p.Shelf, add); err != nil {
				return fmt.Errorf("tech: sim hand: %w", err)
			}
		}
		h.mu.Lock()
		h.placed[p.Shelf] = p.Grams
		h.mu.Unlock()
	case KindRemoveWeights:
		h.note(h.Cab.CloseDoor(p.Door)) // the objects stay: sim cannot remove them
	}
	return nil
}

// Ask acts, then lets Next answer.
func (h *SimHand) Ask(ctx context.Context, p Prompt) (bool, error) {
	if err := h.act(p); err != nil {
		return false, err
	}
	return h.Next.Ask(ctx, p)
}

// Wait acts, then tells Next.
func (h *SimHand) Wait(ctx context.Context, p Prompt) error {
	if err := h.act(p); err != nil {
		return err
	}
	return h.Next.Wait(ctx, p)
}

var _ Prompter = (*SimHand)(nil)
