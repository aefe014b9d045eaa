"""lmforge.alignment."""
