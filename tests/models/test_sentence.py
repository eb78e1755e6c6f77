"""sentence_encoder's fine-tuning option (a GPU option; here on a tiny input): the encoder's own
weights train, and the saved model (encoder included) scores exactly as before saving."""

from __future__ import annotations

import numpy as np
import torch
from conftest import canonical_frame

from studybench import registry
from studybench.models.artifacts import load_model


def test_fine_tuning_trains_the_encoder_and_reloads(tmp_path):
    train = canonical_frame(per_class=6, artists_per_genre=2)
    val = canonical_frame(per_class=2, artist_prefix="Val")
    test = canonical_frame(per_class=2, artist_prefix="Unseen")
    spec = registry.get("sentence_encoder")
    params = spec.resolve("tuned", {"fine_tune": True, "chunk_tokens": 16, "train.epochs": 2,
                                    "train.batch_size": 8, "train.lr": 1e-4})
    model = spec.build(params, "lyrics+artist", 0)
    model._encoder._load()
    before = {k: v.clone() for k, v in model._encoder.net.state_dict().items()}
    selection = model.fit(train, val)
    assert selection["epochs_run"] == 2 and selection["n_params"] > 20_000_000  # the encoder is trained
    after = model.net_.encoder.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    assert all(torch.equal(v, model._encoder.net.state_dict()[k]) for k, v in before.items())  # a copy
    scores, kind = model.scores(test)
    assert kind == "probability" and scores.shape == (len(test), 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    loaded = load_model(model.kind, tmp_path / model.save(tmp_path))
    np.testing.assert_allclose(loaded.scores(test)[0], scores, atol=1e-6)


def test_the_study_display_hears_the_embedding(tmp_path, monkeypatch):
    """A first run embeds its songs before training: its line in the display counts the chunks."""
    from conftest import KAGGLE_TRAIN_HEADER, kaggle_train_rows, write_rows

    from studybench.studies.lyrics import run_lyrics

    monkeypatch.setenv("STUDYBENCH_PREP_CACHE", "0")  # embed even if another test cached these songs
    data = write_rows(tmp_path / "train.csv", KAGGLE_TRAIN_HEADER, kaggle_train_rows(per_class=10))
    seen = []

    def progress(event, status):
        if event.kind == "epoch":
            running = status.running[event.run_id]
            seen.append((running.stage, running.epoch, running.max_epochs))

    run_lyrics(data, models="sentence_encoder", features="lyrics", split="artist", seeds="0",
               overrides={"train.epochs": 2}, out=tmp_path / "out", progress=progress)
    embedding = [s for s in seen if s[0] == "embedding chunks"]
    assert embedding and embedding[0][2] > 0 and any(done == total for _, done, total in embedding)
    assert ("epochs", 2, 2) in seen  # then the training epochs, on the same line
    assert seen.index(embedding[0]) < seen.index(("epochs", 1, 2))
