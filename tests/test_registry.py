"""The model registry: names, duplicates, suggestions, presets."""

from __future__ import annotations

import dataclasses

import pytest

from studybench import registry
from studybench.errors import StudybenchError
from studybench.registry import ModelSpec


def test_lyrics_names_include_the_classical_models():
    names = registry.names("lyrics")
    assert {"majority", "tfidf_logreg", "tfidf_linear_svm", "decision_tree"} <= set(names)
    assert len(names) == len(set(names))
    assert registry.names("no-such-study") == []
    assert set(names) <= set(registry.names())


def test_get_returns_the_spec_with_that_name():
    spec = registry.get("tfidf_logreg")
    assert spec.name == "tfidf_logreg" and spec.study == "lyrics"
    assert spec.features == ("lyrics", "lyrics+artist")


def test_registering_a_duplicate_name_raises_value_error():
    existing = registry.get("majority")
    before = registry.names()
    with pytest.raises(ValueError, match="'majority' is already registered"):
        registry.register(dataclasses.replace(existing, summary="an impostor"))
    assert registry.names() == before
    assert registry.get("majority").summary == existing.summary


def test_registering_without_both_presets_raises_value_error():
    existing = registry.get("majority")
    spec = dataclasses.replace(existing, name="test_only_no_tuned", presets={"seed": {}})
    with pytest.raises(ValueError, match="lacks the 'tuned' preset"):
        registry.register(spec)
    assert "test_only_no_tuned" not in registry.names()


def test_registering_a_preset_with_an_unknown_field_fails():
    existing = registry.get("tfidf_logreg")
    spec = dataclasses.replace(existing, name="test_only_bad_preset",
                               presets={"seed": {}, "tuned": {"no_such_field": 1}})
    with pytest.raises(StudybenchError, match="model.no_such_field"):
        registry.register(spec)
    assert "test_only_bad_preset" not in registry.names()


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(StudybenchError) as info:
        registry.get("tfidf_logrg")
    message = str(info.value)
    assert "unknown model 'tfidf_logrg'" in message
    assert "did you mean tfidf_logreg" in message


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(StudybenchError) as info:
        registry.get("zzzzzz")
    assert "did you mean" not in str(info.value)
    assert "studybench list" in str(info.value)


@pytest.mark.parametrize("name", registry.names())
@pytest.mark.parametrize("preset", registry.PRESETS)
def test_every_spec_resolves_both_presets(name, preset):
    spec = registry.get(name)
    params = spec.resolve(preset)
    assert isinstance(params, spec.params)
    flat = _flat(dataclasses.asdict(params))
    for key, value in spec.presets[spec.preset_for(preset)].items():
        assert flat[key] == value


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested parameter dicts as dotted keys, the way presets name them (train.batch_size)."""
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_unknown_preset_is_an_error():
    with pytest.raises(StudybenchError, match="--preset fast: unknown for majority"):
        registry.get("majority").resolve("fast")


def test_seed_presets_are_the_study_settings():
    # the seed preset reproduces the study, so its values are fixed; tuned ones may evolve
    seed = registry.get("tfidf_logreg").resolve("seed")
    assert (seed.max_features, seed.ngram_max, seed.min_df, seed.sublinear_tf, seed.C, seed.max_iter) == \
        (5000, 1, 1, False, (1.0,), 1000)
    tree = registry.get("decision_tree").resolve("seed")
    assert (tree.input, tree.selection, tree.max_words, tree.max_len) == ("token_ids", "cv5", 20000, 300)
    assert (tree.max_depth, tree.min_samples_split, tree.min_samples_leaf) == ((4, 8), (2, 5, 10), (1, 2, 4))


def test_tuned_preset_differs_from_seed_only_where_it_says():
    for name in registry.names("lyrics"):
        spec = registry.get(name)
        seed, tuned = (_flat(dataclasses.asdict(spec.resolve(p))) for p in registry.PRESETS)
        changed = {k for k in seed if seed[k] != tuned[k]}
        assert changed <= set(spec.presets["tuned"]), name


def test_knows_matches_parameter_names():
    spec = registry.get("tfidf_logreg")
    assert spec.knows("C") and spec.knows("artist_dropout") and spec.knows("max_features")
    assert not spec.knows("max_depth")
    assert not registry.get("majority").knows("C")


def test_model_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.get("majority").name = "other"  # type: ignore[misc]
    assert isinstance(registry.get("majority"), ModelSpec)


def test_a_family_beyond_the_study_runs_seed_as_its_source_recipe_or_tuned():
    spec = registry.get("nb_logreg")
    assert not spec.in_study and set(spec.presets) == {"tuned"}
    assert spec.preset_for("seed") == "tuned" and spec.resolve("seed") == spec.resolve("tuned")
    assert registry.get("tfidf_logreg").preset_for("seed") == "seed"
    # whitened_cnn's seed preset is the published recipe it comes from (airbench94)
    whitened = registry.get("whitened_cnn")
    assert not whitened.in_study and whitened.preset_for("seed") == "seed"
    assert whitened.resolve("seed").widths == (64, 256, 256) and whitened.resolve("seed").train.batch_size == 1024
    with pytest.raises(ValueError, match="lacks the 'tuned' preset"):
        registry.register(dataclasses.replace(spec, name="test_only_beyond_no_tuned", presets={}))
