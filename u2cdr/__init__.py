"""u2cdr: a harness for Universal Unsupervised Cross-Domain Retrieval (U²CDR)."""

__version__ = "0.1.0"
