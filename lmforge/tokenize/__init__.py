"""lmforge.tokenize."""
