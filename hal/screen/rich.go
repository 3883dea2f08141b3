package screen

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"unicode"

	"github.com/bangfu/cabinet/hal"
)

// A screen with a Title or a Body is laid out as a column, centred on the
// screen:
//
//	Title   the CJK font at 32 px when each of its lines fits the width at
//	        that size, else at 16 px, wrapped; centred
//	QR      as on a plain screen: the largest whole module size that fits
//	Status  16 px, wrapped, centred (Unifont's Latin letters are 8×16)
//	Body    16 px lines: wrapped and centred, or cells, or rules
//
// When the column is too tall, the title drops to 16 px, then the last
// body lines give way to "…". Without the font the screen falls back to
// the plain layout of its QR code and Status.
const (
	titlePx        = 32 // the title's size when it fits
	textPx         = 16 // every other line's size
	groupGap       = 6  // between title, code, status and body
	rowGap         = 2  // between lines of a group
	side           = 8  // left and right margin of text
	cellGap        = 8  // between a line's cells
	ruleH          = 7  // a rule: 3 px, a 1 px line, 3 px
	maxStatusLines = 3
	// minTitleQRScale is the smallest module size the QR code may shrink to
	// so that the title can stay large.
	minTitleQRScale = 3
)

// ellipsis ends text cut short.
const ellipsis = "…"

// rich reports whether s uses the column layout.
func rich(s hal.Screen) bool { return s.Title != "" || s.Body != "" }

// row is one line of the column.
type row struct {
	h   int  // height in pixels
	gap int  // space above it
	cut bool // stands for text that did not fit
	// draw draws the row with its top at y.
	draw func(img *image.RGBA, y int)
	qr   bool // the QR code's row
}

// column is a planned rich screen.
type column struct {
	rows    []row
	modules [][]bool // QR modules with the quiet zone; nil for no code
	scale   int      // pixels per module
	qrX     int
	cut     []string // what did not fit, for Fit
}

func (c *column) height() int {
	h := 0
	for i, r := range c.rows {
		if i > 0 {
			h += r.gap
		}
		h += r.h
	}
	return h
}

// planColumn lays s out on a width×height screen with font f.
func planColumn(s hal.Screen, width, height int, f *Font) *column {
	big, small := f.pen(titlePx), f.pen(textPx)
	var mods [][]bool
	status := s.Status
	var notes []string
	if s.QR != "" {
		m, err := qrModules(s.QR)
		if err != nil {
			status = joinLines(qrErrorText, status)
			notes = append(notes, "QR code cannot be encoded")
		} else {
			mods = m
		}
	}
	room := height - 2*margin
	build := func(titlePen *outlinePen) *column {
		c := &column{cut: slices.Clone(notes)}
		gap := 0 // the next group's gap
		add := func(r row) {
			r.gap = gap
			c.rows = append(c.rows, r)
			gap = rowGap
		}
		group := func() {
			if len(c.rows) > 0 {
				gap = groupGap
			}
		}
		group()
		for _, l := range titleLines(s.Title, titlePen, width-2*side) {
			add(textRow(titlePen, l, width))
		}
		group()
		if mods != nil {
			add(row{qr: true})
		}
		group()
		lines := wrapPx(small, status, width-2*side)
		if len(lines) > maxStatusLines {
			lines = lines[:maxStatusLines]
			lines[maxStatusLines-1] = fitText(small, lines[maxStatusLines-1]+ellipsis, width-2*side)
			c.cut = append(c.cut, "status cut short")
		}
		for _, l := range lines {
			add(textRow(small, l, width))
		}
		group()
		for _, r := range bodyRows(s.Body, small, width) {
			add(r)
		}
		return c
	}
	// Pixels left for the code: its row is in the column already, with
	// its gaps and no height.
	qrRoom := func(c *column) int { return room - c.height() }
	pens := []*outlinePen{small}
	if titleFits(s.Title, big, width-2*side) {
		pens = []*outlinePen{big, small}
	}
	var c *column
	for _, titlePen := range pens {
		c = build(titlePen)
		if mods == nil {
			if c.height() <= room || titlePen == small {
				break
			}
			continue
		}
		n := len(mods)
		c.scale = min(width, qrRoom(c)) / n
		if c.scale >= minTitleQRScale || titlePen == small {
			break
		}
		// Would the smaller title give the code more room?
		alt := build(small)
		if min(width, qrRoom(alt))/n <= c.scale {
			break
		}
	}
	if mods != nil {
		n := len(mods)
		if c.scale < 1 {
			// Too big for this screen even at one pixel per module.
			s2 := s
			s2.QR = ""
			s2.Status = joinLines(qrErrorText, s.Status)
			c = planColumn(s2, width, height, f)
			c.cut = append(c.cut, "QR code does not fit")
			return c
		}
		c.modules = mods
		c.qrX = (width - n*c.scale) / 2
		for i := range c.rows {
			if c.rows[i].qr {
				c.rows[i].h = n * c.scale
			}
		}
	}
	// Too tall: the last lines give way to an ellipsis.
	for c.height() > room && len(c.rows) > 1 {
		last := c.rows[len(c.rows)-1]
		if last.qr {
			break
		}
		c.rows = c.rows[:len(c.rows)-1]
		if len(c.rows) > 0 && !c.rows[len(c.rows)-1].cut && !c.rows[len(c.rows)-1].qr {
			prev := c.rows[len(c.rows)-1]
			more := textRow(small, ellipsis, width)
			more.gap, more.cut = prev.gap, true
			c.rows[len(c.rows)-1] = more
		}
		if len(c.cut) == 0 || c.cut[len(c.cut)-1] != "lines dropped" {
			c.cut = append(c.cut, "lines dropped")
		}
	}
	return c
}

// renderColumn draws c on img.
func renderColumn(img *image.RGBA, c *column) {
	height := img.Rect.Dy()
	y := max((height-c.height())/2, margin)
	for i, r := range c.rows {
		if i > 0 {
			y += r.gap
		}
		if r.qr {
			for my, mrow := range c.modules {
				for mx, on := range mrow {
					if on {
						fill(img, image.Rect(c.qrX+mx*c.scale, y+my*c.scale,
							c.qrX+(mx+1)*c.scale, y+(my+1)*c.scale), black)
					}
				}
			}
		} else if r.draw != nil {
			r.draw(img, y)
		}
		y += r.h
	}
}

// textRow is line centred.
func textRow(p pen, line string, width int) row {
	return row{h: p.height(), draw: func(img *image.RGBA, y int) {
		p.draw(img, line, (width-p.width(line))/2, y)
	}}
}

// titleLines breaks the title at its newlines and, when a line is wider
// than width at p's size, wraps it.
func titleLines(title string, p *outlinePen, width int) []string {
	if strings.TrimSpace(title) == "" {
		return nil
	}
	return wrapPx(p, title, width)
}

// titleFits reports whether each of the title's lines fits width at p's
// size unwrapped.
func titleFits(title string, p *outlinePen, width int) bool {
	for _, l := range strings.Split(strings.TrimSpace(title), "\n") {
		if p.width(strings.TrimSpace(l)) > width {
			return false
		}
	}
	return true
}

// bodyRows lays out the body's lines.
func bodyRows(body string, p *outlinePen, width int) []row {
	body = strings.Trim(body, "\n")
	if body == "" {
		return nil
	}
	lines := strings.Split(body, "\n")
	// The columns: the widest last cell, and the widest middle cell.
	lastW, midW := 0, 0
	for _, l := range lines {
		cells := strings.Split(l, "\t")
		if len(cells) < 2 {
			continue
		}
		lastW = max(lastW, p.width(cells[len(cells)-1]))
		if len(cells) > 2 {
			midW = max(midW, p.width(cells[1]))
		}
	}
	right := width - side
	midRight := right - lastW - cellGap
	var rows []row
	for _, l := range lines {
		switch cells := strings.Split(l, "\t"); {
		case l == "---":
			rows = append(rows, row{h: ruleH, draw: func(img *image.RGBA, y int) {
				fill(img, image.Rect(side, y+ruleH/2, width-side, y+ruleH/2+1), black)
			}})
		case len(cells) == 1:
			for _, w := range wrapPx(p, l, width-2*side) {
				rows = append(rows, textRow(p, w, width))
			}
		default:
			first, last := cells[0], cells[len(cells)-1]
			mid := ""
			if len(cells) > 2 {
				mid = strings.Join(cells[1:len(cells)-1], " ")
			}
			firstMax := right - p.width(last) - cellGap - side
			if mid != "" {
				firstMax = midRight - midW - cellGap - side
			}
			first = fitText(p, first, firstMax)
			rows = append(rows, row{h: p.height(), draw: func(img *image.RGBA, y int) {
				p.draw(img, first, side, y)
				if mid != "" {
					p.draw(img, mid, midRight-p.width(mid), y)
				}
				p.draw(img, last, right-p.width(last), y)
			}})
		}
	}
	return rows
}

// fitText cuts text to at most width pixels, ending it in "…" when cut.
func fitText(p pen, text string, width int) string {
	if p.width(text) <= width {
		return text
	}
	r := []rune(strings.TrimSuffix(text, ellipsis))
	for len(r) > 0 && p.width(string(r)+ellipsis) > width {
		r = r[:len(r)-1]
	}
	if len(r) == 0 {
		return ""
	}
	return strings.TrimRightFunc(string(r), unicode.IsSpace) + ellipsis
}

// wrapPx breaks text into lines at most width pixels wide: at its
// newlines, at spaces, and between Chinese characters, never before
// closing punctuation. A word wider than a line is split.
func wrapPx(p pen, text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(strings.TrimSpace(text), "\n") {
		var line string
		for _, tok := range tokens(strings.TrimSpace(para)) {
			cand := line + tok
			if line == "" {
				cand = strings.TrimLeft(tok, " ")
			}
			if p.width(cand) <= width {
				line = cand
				continue
			}
			if line != "" {
				lines = append(lines, strings.TrimRight(line, " "))
			}
			line = strings.TrimLeft(tok, " ")
			// A word longer than a line is split; a character wider than
			// the line stands alone.
			for r := []rune(line); len(r) > 1 && p.width(line) > width; r = []rune(line) {
				n := len(r) - 1
				for n > 1 && p.width(string(r[:n])) > width {
					n--
				}
				lines = append(lines, string(r[:n]))
				line = string(r[n:])
			}
		}
		if line = strings.TrimRight(line, " "); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// tokens splits text into the pieces a line may break between: a Latin
// word with the spaces before it, or one Chinese character; closing
// punctuation sticks to what is before it.
func tokens(text string) []string {
	var toks []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, string(cur))
			cur = nil
		}
	}
	for _, r := range text {
		switch {
		case closing(r) && len(cur) == 0 && len(toks) > 0:
			toks[len(toks)-1] += string(r)
		case closing(r):
			cur = append(cur, r)
		case unicode.IsSpace(r):
			if len(cur) > 0 && !unicode.IsSpace(cur[len(cur)-1]) {
				flush()
			}
			cur = append(cur, ' ')
		case wide(r):
			if len(cur) > 0 && !onlySpaces(cur) {
				flush()
			}
			cur = append(cur, r)
			flush()
		default:
			if len(cur) > 0 && !unicode.IsSpace(cur[len(cur)-1]) && wide(cur[len(cur)-1]) {
				flush()
			}
			cur = append(cur, r)
		}
	}
	flush()
	return toks
}

func onlySpaces(r []rune) bool {
	for _, c := range r {
		if !unicode.IsSpace(c) {
			return false
		}
	}
	return true
}

// wide reports a character a line may break after: Chinese, Japanese and
// full-width forms.
func wide(r rune) bool {
	return unicode.Is(unicode.Han, r) || (r >= 0x3000 && r <= 0x30ff) || (r >= 0xff00 && r <= 0xffef)
}

// closing reports punctuation that must not start a line.
func closing(r rune) bool {
	return strings.ContainsRune("，。、；：！？）》」』…,.;:!?)%", r)
}

// Fit reports whether s shows whole on a width×height screen drawn with f
// (nil: without the CJK font): nil, or an error naming what would be cut
// or replaced.
func Fit(s hal.Screen, width, height int, f *Font) error {
	if rich(s) && f != nil {
		c := planColumn(s, width, height, f)
		if len(c.cut) > 0 {
			return fmt.Errorf("screen: %dx%d: %s", width, height, strings.Join(c.cut, ", "))
		}
		return nil
	}
	l := plan(s, width, height)
	var errs []error
	if s.QR != "" && l.modules == nil {
		errs = append(errs, errors.New("QR code replaced"))
	}
	if n := len(l.lines); n == maxTextLines && strings.HasSuffix(l.lines[n-1], "...") {
		errs = append(errs, errors.New("status cut short"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("screen: %dx%d: %w", width, height, errors.Join(errs...))
	}
	return nil
}
