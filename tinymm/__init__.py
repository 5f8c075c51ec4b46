"""tinymm: a small, complete, fast deep-learning library for multimodal models."""
__version__ = "0.1.0"
