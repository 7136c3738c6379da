"""audiothinker: teach audio language models when and how to think with RL (Audio-Thinker, arXiv 2508.08039)."""

__version__ = "0.1.0"
