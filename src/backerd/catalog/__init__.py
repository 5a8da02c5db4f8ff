"""The catalog: what is on every cassette, kept in SQLite, rebuildable from the tapes."""
