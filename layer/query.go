package layer

import (
	"os"
	"path/filepath"
	"sort"
)

// LayerUse is a layer with the images that use it.
type LayerUse struct {
	*Layer
	Images []string `json:"images"`
}

// Layers lists every committed layer with the images using it, largest
// first.
func (s *Store) Layers() ([]LayerUse, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, layersDir))
	if err != nil {
		return nil, err
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, img := range imgs {
		for _, l := range img.Layers {
			users[l.DiffID] = append(users[l.DiffID], img.ID)
		}
	}
	out := []LayerUse{}
	for _, e := range ents {
		l, err := s.Layer("sha256:" + e.Name())
		if err != nil {
			continue
		}
		u := users[l.DiffID]
		if u == nil {
			u = []string{}
		}
		out = append(out, LayerUse{Layer: l, Images: u})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].DiffID < out[j].DiffID
	})
	return out, nil
}

// ImagesUsing lists the IDs of the images that have the layer diffID.
func (s *Store) ImagesUsing(diffID string) ([]string, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, img := range imgs {
		for _, l := range img.Layers {
			if l.DiffID == diffID {
				out = append(out, img.ID)
				break
			}
		}
	}
	return out, nil
}
