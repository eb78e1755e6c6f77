"""Model families; importing this package registers every model name."""

from studybench.models.image import autoencoder  # noqa: F401
from studybench.models.image import cnn as image_cnn  # noqa: F401
from studybench.models.text import classic, cnn, embedding, rnn  # noqa: F401
