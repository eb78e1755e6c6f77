"""Model families; importing this package registers every model name."""

from studybench.models.text import classic, cnn, embedding, rnn  # noqa: F401
