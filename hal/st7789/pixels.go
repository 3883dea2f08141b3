package st7789

import (
	"image"

	"github.com/bangfu/cabinet/hal/screen"
)

// toRGB565BE writes the size.X×size.Y block of src whose top-left corner is
// sp into buf as big-endian RGB565, row after row, and returns the number of
// bytes written. The block must lie inside src and buf must be large enough.
//
// *image.RGBA, what screen.Render produces, is read straight from its pixel
// slice: going through At boxes every pixel in an interface, which costs an
// allocation per pixel and most of a frame's time.
func toRGB565BE(buf []byte, size image.Point, src image.Image, sp image.Point) int {
	i := 0
	switch s := src.(type) {
	case *image.RGBA:
		for y := sp.Y; y < sp.Y+size.Y; y++ {
			row := s.Pix[s.PixOffset(sp.X, y):]
			row = row[:4*size.X]
			for x := 0; x < len(row); x += 4 {
				c := screen.ToRGB565(row[x], row[x+1], row[x+2])
				buf[i], buf[i+1] = byte(c>>8), byte(c)
				i += 2
			}
		}
	default:
		for y := sp.Y; y < sp.Y+size.Y; y++ {
			for x := sp.X; x < sp.X+size.X; x++ {
				c := screen.RGB565Model.Convert(src.At(x, y)).(screen.RGB565)
				buf[i], buf[i+1] = byte(c>>8), byte(c)
				i += 2
			}
		}
	}
	return i
}
