"""lmforge.corpus: crawl dumps -> clean, language-labelled, filtered, deduplicated documents.

Every step is a datatrove `PipelineStep`, so datatrove's executors (local, Slurm, Ray) run
lmforge pipelines unchanged.
"""
