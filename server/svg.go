package server

import (
	"sort"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// graph is a lineage laid out for an SVG drawn by the server: ancestors
// in a column above the version, descendants in rows below by depth.
type graph struct {
	Width, Height int
	Nodes         []node
	Edges         []edge
}

type node struct {
	X, Y         int
	Image, Ver   string
	Href         string
	Class        string // this, ancestor, descendant, stale, revoked
	Title        string
	W, H         int
	TextX, TextY int
	Text2Y       int
	Note         string
}

type edge struct{ X1, Y1, X2, Y2 int }

const (
	nodeW, nodeH = 210, 44
	gapX, gapY   = 24, 36
)

func layoutLineage(l *LineageView) *graph {
	type item struct {
		v     *catalog.Version
		depth int
		class string
	}
	var items []item
	for i := len(l.Ancestors) - 1; i >= 0; i-- {
		items = append(items, item{l.Ancestors[i], -(i + 1), "ancestor"})
	}
	items = append(items, item{l.Version, 0, "this"})
	// Descendants' depth: one more than their parent's.
	depth := map[string]int{l.Version.ImageID: 0}
	desc := append([]*catalog.Version{}, l.Descendants...)
	for changed := true; changed; {
		changed = false
		for _, d := range desc {
			if pd, ok := depth[d.ParentID]; ok {
				if _, done := depth[d.ImageID]; !done {
					depth[d.ImageID] = pd + 1
					changed = true
				}
			}
		}
	}
	sort.SliceStable(desc, func(i, j int) bool { return depth[desc[i].ImageID] < depth[desc[j].ImageID] })
	for _, d := range desc {
		items = append(items, item{d, depth[d.ImageID], "descendant"})
	}
	minD := -len(l.Ancestors)
	perRow := map[int]int{}
	col := make([]int, len(items))
	maxCols := 1
	for i, it := range items {
		col[i] = perRow[it.depth]
		perRow[it.depth]++
		if perRow[it.depth] > maxCols {
			maxCols = perRow[it.depth]
		}
	}
	g := &graph{Width: 2*gapX + maxCols*(nodeW+gapX)}
	pos := map[string][2]int{}
	maxRow := 0
	for i, it := range items {
		row := it.depth - minD
		if row > maxRow {
			maxRow = row
		}
		x := gapX + col[i]*(nodeW+gapX)
		y := gapY/2 + row*(nodeH+gapY)
		n := node{X: x, Y: y, W: nodeW, H: nodeH, Image: it.v.Image, Ver: it.v.Version, Class: it.class,
			Href: "/images/" + it.v.Image + "/versions/" + it.v.Version, TextX: x + 8, TextY: y + 18, Text2Y: y + 35,
			Title: it.v.Ref() + " " + it.v.ImageID}
		if st := l.Stale[it.v.Ref()]; st != nil && it.class != "ancestor" {
			n.Class += " stale"
			n.Note = "out of date"
			n.Title += " — out of date: " + st.Ancestor + " is on no channel"
		}
		if it.v.Revoked {
			n.Class += " revoked"
			n.Title += " — revoked: " + it.v.RevokedReason
			if n.Note == "" {
				n.Note = "revoked"
			}
		}
		g.Nodes = append(g.Nodes, n)
		if _, ok := pos[it.v.ImageID]; !ok {
			pos[it.v.ImageID] = [2]int{x + nodeW/2, y}
		}
	}
	for _, n := range items {
		if p, ok := pos[n.v.ParentID]; ok && n.v.ParentID != "" {
			c := pos[n.v.ImageID]
			for _, gn := range g.Nodes {
				if gn.Image == n.v.Image && gn.Ver == n.v.Version {
					c = [2]int{gn.X + nodeW/2, gn.Y}
				}
			}
			g.Edges = append(g.Edges, edge{p[0], p[1] + nodeH, c[0], c[1]})
		}
	}
	g.Height = gapY + (maxRow+1)*(nodeH+gapY)
	return g
}
