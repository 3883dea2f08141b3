package tech

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/bangfu/cabinet/firmware/ledger"
)

// Kind says what a Prompt asks for, so a simulated technician can act on it.
type Kind int

// Prompt kinds.
const (
	KindOpenDoor       Kind = iota + 1 // Wait: open Door; the switch is watched
	KindCloseDoor                      // Wait: close Door
	KindCheckDisplay                   // Ask: does the display show the test screen?
	KindCheckIndicator                 // Ask: do the LED and buzzer signal?
	KindEmptyShelf                     // Ask: is Shelf empty?
	KindPlaceWeight                    // Ask: are Grams (in total) on Shelf?
	KindRemoveWeights                  // Wait: take the weights off Shelf, close Door
)

// Prompt is one instruction or question for the technician.
type Prompt struct {
	Kind  Kind
	Door  int
	Shelf int
	Grams float64
	// Cell is the load cell a calibration step is for: "" for a one-cell
	// shelf, else ledger.CellLeft or ledger.CellRight.
	Cell ledger.Cell
	Text string // what the technician reads
}

func (p Prompt) String() string { return p.Text }

// Prompter is the technician.
type Prompter interface {
	// Ask puts a yes/no question and returns the answer.
	Ask(ctx context.Context, p Prompt) (bool, error)
	// Wait tells the technician to do something the procedure then watches
	// the hardware for (a door opening); it returns without waiting for a
	// reply.
	Wait(ctx context.Context, p Prompt) error
}

// LinePrompter asks on a text stream: questions go to out, answers ("y",
// "yes", "n", "no") are read from in a line at a time.
//
// A read from a terminal cannot be interrupted, so lines are read by one
// goroutine the prompter starts at its first question; Ask returns when ctx
// ends, and that goroutine ends when in does (end of input, or the process
// exiting after the cancel).
type LinePrompter struct {
	in  io.Reader
	out io.Writer

	once  sync.Once
	lines chan string // closed at the end of input
}

// NewLinePrompter returns a prompter reading in and writing out.
func NewLinePrompter(in io.Reader, out io.Writer) *LinePrompter {
	return &LinePrompter{in: in, out: out, lines: make(chan string)}
}

func (l *LinePrompter) start() {
	l.once.Do(func() {
		go func() {
			defer close(l.lines)
			sc := bufio.NewScanner(l.in)
			for sc.Scan() {
				l.lines <- sc.Text()
			}
		}()
	})
}

// Ask asks until the answer is yes or no.
func (l *LinePrompter) Ask(ctx context.Context, p Prompt) (bool, error) {
	l.start()
	for {
		if _, err := fmt.Fprintf(l.out, "%s [y/n] ", p.Text); err != nil {
			return false, fmt.Errorf("tech: prompt: %w", err)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(l.out)
			return false, fmt.Errorf("tech: waiting for an answer: %w", ctx.Err())
		case line, ok := <-l.lines:
			if !ok {
				fmt.Fprintln(l.out)
				return false, ErrNoAnswer
			}
			switch strings.ToLower(strings.TrimSpace(line)) {
			case "y", "yes":
				return true, nil
			case "n", "no":
				return false, nil
			}
		}
	}
}

// Wait prints the instruction.
func (l *LinePrompter) Wait(_ context.Context, p Prompt) error {
	if _, err := fmt.Fprintf(l.out, ">> %s\n", p.Text); err != nil {
		return fmt.Errorf("tech: prompt: %w", err)
	}
	return nil
}

// Yes answers every question yes, printing it: `cabinet diag --yes` on a
// cabinet nobody watches the screen of. Door steps still need a person.
type Yes struct{ Out io.Writer }

// Ask prints the question and answers yes.
func (y Yes) Ask(_ context.Context, p Prompt) (bool, error) {
	if _, err := fmt.Fprintf(y.Out, "%s [y/n] yes (--yes)\n", p.Text); err != nil {
		return false, fmt.Errorf("tech: prompt: %w", err)
	}
	return true, nil
}

// Wait prints the instruction.
func (y Yes) Wait(_ context.Context, p Prompt) error {
	if _, err := fmt.Fprintf(y.Out, ">> %s\n", p.Text); err != nil {
		return fmt.Errorf("tech: prompt: %w", err)
	}
	return nil
}

var (
	_ Prompter = (*LinePrompter)(nil)
	_ Prompter = Yes{}
)
