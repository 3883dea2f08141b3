package demo

import (
	"fmt"
	"testing"

	"github.com/bangfu/cabinet/firmware/infer"
)

func TestDiag(t *testing.T) {
	ss, cabinet, prices := sessions(t, 3000, 0.5, 7)
	shown := 0
	for _, s := range ss {
		r := infer.Infer(s.shelves, cabinet, nil)
		var fen int64
		for _, l := range r.Lines {
			fen += int64(l.Qty) * prices[l.SKU]
		}
		if s.moved || fen >= s.wantFen || shown > 15 {
			continue
		}
		resc := false
		for _, sh := range r.Shelves {
			if len(sh.Added) > 0 {
				resc = true
			}
		}
		if !resc {
			continue
		}
		shown++
		fmt.Println("WANT", s.want, s.wantFen, "GOT", r.Lines, fen, "margin", r.MarginLogL)
		for _, sh := range r.Shelves {
			if len(sh.Removed) > 0 || len(sh.Added) > 0 {
				fmt.Printf("   shelf %d d=%.1f cands=%d rem=%v add=%v res=%.1f\n", sh.Shelf, sh.DeltaG, sh.Candidates, sh.Removed, sh.Added, sh.ResidualG)
			}
		}
	}
}
