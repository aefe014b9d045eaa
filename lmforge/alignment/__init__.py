"""lmforge.alignment: the chat format, supervised fine-tuning, reward model, RL (GRPO/PPO), DPO.

Uses `lmforge.train` (the GPT, checkpoints) and `lmforge.tokenize` (the tokenizer's reserved
chat tokens); nothing here is imported by `import lmforge`.
"""
