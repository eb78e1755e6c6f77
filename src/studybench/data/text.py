"""Word vocabulary and fixed-length id sequences, learned on the training split only.

scikit-learn style: settings in ``__init__``, learning in ``fit``, applying in
``transform``; learned attributes end in ``_``. Tokenising uses Hugging Face
``tokenizers`` (a word-level model over whitespace-split, already cleaned text),
not a Python loop. Id 0 is padding and id 1 the unknown word; sequences are cut
to ``max_len`` and padded at the end, and the true lengths are kept so recurrent
models can skip padding and batches can be bucketed by length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PAD, UNK = "<pad>", "<unk>"


class TextEncoder:
    """Texts -> (ids [N, max_len] int64, lengths [N] int64)."""

    def __init__(self, max_words: int = 20000, max_len: int = 300, min_count: int = 1,
                 ngram_max: int = 1):
        self.max_words = max_words  # vocabulary size including <pad> and <unk>
        self.max_len = max_len  # tokens kept per song (the first ones)
        self.min_count = min_count  # words seen fewer times in training are <unk>
        self.ngram_max = ngram_max  # 2 appends word pairs ("broken_heart") after the words

    def _with_ngrams(self, texts: Sequence[str]) -> list[str]:
        if self.ngram_max < 2:
            return list(texts)
        out = []
        for text in texts:
            words = text.split()
            grams = ["_".join(words[i:i + n]) for n in range(2, self.ngram_max + 1)
                     for i in range(len(words) - n + 1)]
            out.append(" ".join(words + grams))
        return out

    def fit(self, texts: Sequence[str]) -> "TextEncoder":
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.WordLevelTrainer(vocab_size=self.max_words, min_frequency=self.min_count,
                                            special_tokens=[PAD, UNK], show_progress=False)
        tokenizer.train_from_iterator(self._with_ngrams(texts), trainer)
        self._finish(tokenizer)
        return self

    def _finish(self, tokenizer) -> None:
        tokenizer.enable_truncation(self.max_len)
        tokenizer.enable_padding(pad_id=0, pad_token=PAD, length=self.max_len)
        self.tokenizer_ = tokenizer
        self.vocab_size_ = tokenizer.get_vocab_size()

    def transform(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer_.encode_batch(self._with_ngrams(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long).reshape(-1, self.max_len)
        # An empty song still gets one (padding) step, so packed sequences never see length 0.
        lengths = torch.tensor([sum(e.attention_mask) for e in encodings], dtype=torch.long).clamp(min=1)
        return ids, lengths

    def vocabulary(self) -> dict[str, int]:
        """Word -> id, as learned."""
        return self.tokenizer_.get_vocab()

    def to_state(self) -> dict:
        """A JSON-ready description from which :meth:`from_state` rebuilds the encoder."""
        return {"max_words": self.max_words, "max_len": self.max_len, "min_count": self.min_count,
                "ngram_max": self.ngram_max, "tokenizer": self.tokenizer_.to_str()}

    @classmethod
    def from_state(cls, state: dict) -> "TextEncoder":
        from tokenizers import Tokenizer

        encoder = cls(state["max_words"], state["max_len"], state["min_count"], state.get("ngram_max", 1))
        tokenizer = Tokenizer.from_str(state["tokenizer"])
        tokenizer.no_truncation()
        tokenizer.no_padding()
        encoder._finish(tokenizer)
        return encoder
