package layer

// Hold keeps img's layers from garbage collection while a build mounts or
// reads them: each layer's entry lock, shared (see lock.go), released by the
// returned function (or when the process dies). A layer that is gone, also
// one a deletion removed while Hold waited, is an error and nothing is held.
func (s *Store) Hold(img *Image) (func(), error) {
	var held []func()
	release := func() {
		for _, r := range held {
			r()
		}
	}
	for _, l := range img.Layers {
		_, r, err := s.holdLayer(l.DiffID)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, r)
	}
	return release, nil
}

// HoldLayer keeps one layer from garbage collection until the returned
// function is called: its entry lock, shared. A layer the store lacks,
// also one a deletion removed while HoldLayer waited, is ErrNotFound
// (wrapped).
func (s *Store) HoldLayer(diffID string) (*Layer, func(), error) {
	return s.holdLayer(diffID)
}
