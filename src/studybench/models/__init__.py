"""Model families; importing this package registers every model name."""

from studybench.models.text import classic  # noqa: F401
