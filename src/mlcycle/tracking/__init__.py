"""Experiment tracking: validation, the search language, system facts, the background writer."""
