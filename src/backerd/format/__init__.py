"""Backer tape format codecs (pure: bytes/arrays in, bytes/arrays out, no I/O)."""
