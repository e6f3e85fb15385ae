"""Model Optimization Studio: make neural networks smaller and faster, and measure what it cost."""

__version__ = "0.1.0"
