"""lmforge.pipelines."""
