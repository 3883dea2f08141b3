package demo

import (
	"fmt"
	"testing"

	"github.com/bangfu/cabinet/firmware/infer"
)

func TestDiag(t *testing.T) {
	ss, cabinet, prices := sessions(t, 300, 0.5, 7)
	_ = prices
	shown := 0
	for _, s := range ss {
		r := infer.Infer(s.shelves, cabinet, nil)
		if r.Status != infer.StatusAmbiguous || shown > 12 {
			continue
		}
		shown++
		fmt.Println("WANT", s.want, "moved", s.moved, "GOT", r.Lines, "margin", r.MarginLogL)
		for _, sh := range r.Shelves {
			if sh.Candidates != 1 || len(sh.Removed) > 0 || len(sh.Added) > 0 {
				fmt.Printf("   shelf %d d=%.1f cands=%d rem=%v add=%v res=%.1f\n", sh.Shelf, sh.DeltaG, sh.Candidates, sh.Removed, sh.Added, sh.ResidualG)
			}
		}
	}
}
