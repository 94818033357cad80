package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// plotColors are the bar colours of the backends, in order of appearance.
var plotColors = []color.RGBA{
	{0x4c, 0x72, 0xb0, 0xff}, {0xdd, 0x84, 0x52, 0xff}, {0x55, 0xa8, 0x68, 0xff},
	{0xc4, 0x4e, 0x52, 0xff}, {0x81, 0x72, 0xb3, 0xff}, {0x93, 0x78, 0x60, 0xff},
}

// WritePNG draws the report's speed ratios against kernel overlayfs as a
// horizontal bar chart on a log scale: one group of bars per workload, one
// bar per backend, right of the 1x line when faster than kernel overlayfs.
// Missing figures have no bar.
func (r *Report) WritePNG(w io.Writer) error {
	var workloads, backends []string
	seenW, seenB := map[string]bool{}, map[string]bool{}
	ratios := map[[2]string]float64{}
	hasBar := map[string]bool{}
	for _, f := range r.Figures {
		if f.Backend == KernelOverlayName {
			continue
		}
		if !seenW[f.Workload] {
			seenW[f.Workload] = true
			workloads = append(workloads, f.Workload)
		}
		if !seenB[f.Backend] {
			seenB[f.Backend] = true
			backends = append(backends, f.Backend)
		}
		if f.VsKernel != nil {
			ratios[[2]string{f.Workload, f.Backend}] = *f.VsKernel
			hasBar[f.Backend] = true
		}
	}
	const (
		width, labelW, top, barH, gap = 1100, 380, 70, 8, 10
		minExp, maxExp                = -2.0, 2.0 // 0.01x … 100x
	)
	groupH := barH*len(backends) + gap
	height := top + groupH*len(workloads) + 40
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey := color.RGBA{0xd0, 0xd0, 0xd0, 0xff}
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	plotL, plotR := labelW+10, width-20
	xOf := func(ratio float64) int {
		e := math.Log10(ratio)
		e = math.Max(minExp, math.Min(maxExp, e))
		return plotL + int(float64(plotR-plotL)*(e-minExp)/(maxExp-minExp))
	}
	fill := func(x0, y0, x1, y1 int, c color.Color) {
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
	}
	text(10, 18, "Speed against kernel overlayfs (log scale; right of 1x is faster)", black)
	text(10, 34, fmt.Sprintf("%s, commit %.12s, Linux %s, %d CPUs", r.Date.Format("2006-01-02"), orNone(r.Commit), r.Machine.Kernel, r.Machine.CPUs), black)
	lx := 10
	for i, b := range backends {
		label := b
		if !hasBar[b] {
			label += " (missing)"
		}
		fill(lx, 44, lx+12, 54, plotColors[i%len(plotColors)])
		text(lx+16, 54, label, black)
		lx += 16 + 7*len(label) + 20
	}
	bottom := top + groupH*len(workloads)
	for e := minExp; e <= maxExp; e++ {
		x := xOf(math.Pow(10, e))
		c := grey
		if e == 0 {
			c = black
		}
		fill(x, top-4, x+1, bottom, c)
		label := fmt.Sprintf("%gx", math.Pow(10, e))
		text(x-3*len(label), bottom+16, label, black)
	}
	for wi, wl := range workloads {
		y := top + wi*groupH
		name := wl
		if len(name) > labelW/7 {
			name = name[:labelW/7-1] + "…"
		}
		text(10, y+barH*len(backends)/2+5, name, black)
		for bi, b := range backends {
			v, ok := ratios[[2]string{wl, b}]
			if !ok {
				continue
			}
			by := y + bi*barH
			x0, x1 := xOf(1), xOf(v)
			if x1-x0 < 2 && x0-x1 < 2 {
				x1 = x0 + 2 // a ratio of about 1 still shows
			}
			fill(x0, by, x1, by+barH-1, plotColors[bi%len(plotColors)])
		}
	}
	return png.Encode(w, img)
}
