"""Model shapes by name, without importing torch (the CLI lists them in `--help`)."""

from __future__ import annotations

# name -> shape without the vocabulary (it comes from the manifest's tokenizer).
# Parameter counts are for a 50304-token vocabulary with untied embeddings unless noted.
PRESETS: dict[str, dict] = {
    # ~0.8M block params; trains in about a minute on 2 CPU cores and its loss falls visibly.
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, tie_embeddings=True),
    # ~3.2M block params; a better CPU model for a few minutes of training.
    "small": dict(n_layer=6, n_head=4, n_embd=256, block_size=256, tie_embeddings=True),
    # ~10.6M block params (nanoGPT's Shakespeare shape with a 512 context).
    "d6": dict(n_layer=6, n_head=6, n_embd=384, block_size=512, tie_embeddings=True),
    # GPT-2 small: 124M with tied embeddings, the shape of nanoGPT's benchmark.
    "d12": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, tie_embeddings=True),
    # GPT-2 medium: 350M with tied embeddings.
    "d24": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024, tie_embeddings=True),
}
