"""Model families; importing this package registers every model name (lyrics first, as in the study)."""

from studybench.models.text import classic, cnn, embedding, rnn, sentence  # noqa: F401, I001
from studybench.models.text import ensemble  # noqa: F401  (after the families it combines)
from studybench.models.image import autoencoder  # noqa: F401
from studybench.models.image import cnn as image_cnn  # noqa: F401
from studybench.models.image import whitened  # noqa: F401  (not in the study)
