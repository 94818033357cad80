package cas

// WithRefBatch makes reference counts change in transactions of n objects,
// so that tests exercise the multi-transaction path with small layers.
func WithRefBatch(n int) Option { return func(s *Store) { s.refBatch = n } }
