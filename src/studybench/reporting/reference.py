"""The study's own published figures, from ``shared/reference/STUDY.md``.

They are *validation* accuracies of the study's notebooks on its own data (the
Kaggle multilingual lyrics, 10 genres; CIFAR-100 class blocks of 50), with random
unseeded splits: context for our numbers, not a like-for-like comparison.
"""

LYRICS_VALIDATION_ACCURACY = {
    "rnn": "0.549 (best)",
    "lstm": "about 0.52",
    "lstm_stacked": "0.560",
    "embedding_bag": "0.615",
    "pretrained_embedding": "0.571",
    "tfidf_logreg": "0.607",
    "cnn_same_kernel": "0.52–0.56",
    "cnn_multi_kernel": "0.07 (defect)",
    "cnn_lstm": "0.57–0.59",
    "cnn_flat_lstm": "about 0.40",
    "decision_tree": "0.32–0.35",
    "majority": "0.42 (Rock)",
}

IMAGE_VALIDATION_ACCURACY = {
    "cnn_basic": "0.514",
    "cnn_tanh": "0.357",
    "cnn_sigmoid_out": "0.520",
    "cnn_skip": "0.506",
    "conv_autoencoder": "(reported an 'accuracy' on pixels: meaningless)",
}

TRANSFER_NOTE = ("The study's block-2 figures: combined transfer model 0.549 and a 'from scratch' "
                 "baseline 0.545 that kept training the block-1 network (neither scratch nor clean "
                 "transfer); validation accuracy on 50 CIFAR-100 classes.")
