"""The stopmo movie-package contract, shared by every program (standard library only)."""
