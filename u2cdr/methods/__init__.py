"""Retrieval methods, one registered class per file."""
