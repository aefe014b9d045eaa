"""lmforge: from raw web crawl dumps to a small aligned chat model.

Importing the package imports nothing heavy; each part (`corpus`, `tokenize`, `train`,
`alignment`, `pipelines`) is imported on use.
"""

__version__ = "0.1.0"
