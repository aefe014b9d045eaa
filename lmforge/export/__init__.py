"""lmforge.export: runs out to other ecosystems (`lmforge export hf`: a Hugging Face model folder)."""
