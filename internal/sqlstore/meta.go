package sqlstore

// MetaInt returns the integer stored under an internal metadata key.
func (s *Store) MetaInt(key string) (int64, bool, error) {
	c, err := s.reader()
	if c == nil || err != nil {
		return 0, false, err
	}
	st, err := s.prepared("SELECT value FROM _durable_meta WHERE key = ?")
	if err != nil {
		return 0, false, err
	}
	defer st.Reset()
	st.BindText(1, key)
	if !st.Step() {
		return 0, false, s.afterError(st.Err())
	}
	return st.ColumnInt64(0), true, nil
}

// SetMetaInt stores an integer under an internal metadata key.
func (s *Store) SetMetaInt(key string, v int64) error {
	if _, err := s.writer(); err != nil {
		return err
	}
	st, err := s.prepared("INSERT INTO _durable_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
	if err != nil {
		return err
	}
	st.BindText(1, key)
	st.BindInt64(2, v)
	return s.afterError(st.Exec())
}

// DeleteMeta removes internal metadata keys.
func (s *Store) DeleteMeta(keys ...string) error {
	if c, err := s.reader(); c == nil || err != nil {
		return err
	}
	if _, err := s.writer(); err != nil {
		return err
	}
	st, err := s.prepared("DELETE FROM _durable_meta WHERE key = ?")
	if err != nil {
		return err
	}
	for _, k := range keys {
		st.BindText(1, k)
		if err := st.Exec(); err != nil {
			return s.afterError(err)
		}
	}
	return nil
}

// Size returns the database's size in bytes (pages in use times page size);
// 0 for an object that has no file.
func (s *Store) Size() (int64, error) {
	c, err := s.reader()
	if err != nil {
		return 0, err
	}
	if c == nil {
		// No file yet: the object's database is the template.
		return int64(len(s.cfg.Template)), nil
	}
	st, err := s.prepared("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
	if err != nil {
		return 0, err
	}
	defer st.Reset()
	if !st.Step() {
		return 0, st.Err()
	}
	return st.ColumnInt64(0), nil
}
