"""Helpers shipped with the package for testing code that uses mlcycle (and mlcycle itself)."""
