"""Losses shared by several methods, one ``nn.Module`` per file with its equation in the docstring."""
