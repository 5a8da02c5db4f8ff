"""Backer card backends (ISA card, parallel-port unit), their OS layer and emulators."""
