"""studybench: honest comparisons of the model families of a two-part deep-learning study."""

__version__ = "0.1.0"
