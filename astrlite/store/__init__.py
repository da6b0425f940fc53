"""Persistent state: one sqlite database (WAL) in the data directory, plus files."""
