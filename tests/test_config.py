"""Typed configuration: --set parsing, overrides with key-naming errors, model parameters."""

from __future__ import annotations

import pytest

from studybench import registry
from studybench.config import (
    coerce,
    CleaningConfig,
    Columns,
    DataConfig,
    ImagesConfig,
    LyricsConfig,
    SplitConfig,
    apply_overrides,
    from_dict,
    load_yaml_overrides,
    parse_assignments,
    split_overrides,
    to_dict,
)
from studybench.errors import StudybenchError


def test_parse_assignments_keeps_text_for_typed_coercion():
    # Values stay text; coerce() reads them as the field's declared type (see below).
    parsed = parse_assignments(["a.b=3", "f=0.25", "t=true", "l=[1, 2.5]", "c=1,4", "e=", " k = v "])
    assert parsed == {"a.b": "3", "f": "0.25", "t": "true", "l": "[1, 2.5]", "c": "1,4", "e": "",
                      "k": "v"}


def test_coerce_reads_text_as_the_declared_type():
    assert coerce("3", int, "k") == 3 and type(coerce("3", int, "k")) is int
    assert coerce("0.25", float, "k") == 0.25
    assert coerce("true", bool, "k") is True and coerce("off", bool, "k") is False
    assert coerce("[1, 2.5]", tuple[float, ...], "k") == (1.0, 2.5)
    assert coerce("1,4", tuple[float, ...], "k") == (1.0, 4.0)
    assert coerce("no", str, "k") == "no"


def test_parse_assignments_keeps_null_as_text_and_bad_yaml_raw():
    parsed = parse_assignments(["x=null", "y=[unclosed", "z=a=b"])
    assert parsed == {"x": "null", "y": "[unclosed", "z": "a=b"}


@pytest.mark.parametrize("item", ["novalue", "=3", "  =x"])
def test_parse_assignments_needs_key_and_equals(item):
    with pytest.raises(StudybenchError, match="expected key=value"):
        parse_assignments([item])


def test_apply_overrides_sets_typed_values_and_leaves_the_rest():
    config = apply_overrides(LyricsConfig(), parse_assignments([
        "split.test_size=0.25", "split.kind=artist", "clean.dedupe=false", "clean.min_tokens=3",
    ]))
    assert config.split == SplitConfig(kind="artist", test_size=0.25, val_size=0.1)
    assert config.clean == CleaningConfig(dedupe=False, min_tokens=3)
    assert config.data == DataConfig()
    assert LyricsConfig().split.test_size == 0.2  # the default is untouched (frozen copies)


def test_int_becomes_float_and_integral_float_becomes_int():
    config = apply_overrides(ImagesConfig(), {"data.train_fraction": 1})
    assert config.data.train_fraction == 1.0 and type(config.data.train_fraction) is float
    config = apply_overrides(LyricsConfig(), {"clean.min_tokens": 2.0})
    assert config.clean.min_tokens == 2 and type(config.clean.min_tokens) is int


@pytest.mark.parametrize("raw, expected", [("yes", True), ("off", False), ("1", True), ("0", False)])
def test_bool_spellings(raw, expected):
    config = apply_overrides(LyricsConfig(), parse_assignments([f"clean.stopwords={raw}"]))
    assert config.clean.stopwords is expected


def test_nested_override_data_columns_text():
    config = apply_overrides(LyricsConfig(), parse_assignments(["data.columns.text=body",
                                                                "data.schema=tcc_ceds"]))
    assert config.data.columns == Columns(text="body")
    assert config.data.schema == "tcc_ceds"


@pytest.mark.parametrize("key", ["split.nope", "nope", "data.columns.lyrics", "clean.Lowercase"])
def test_unknown_key_names_the_key(key):
    with pytest.raises(StudybenchError) as info:
        apply_overrides(LyricsConfig(), {key: 1})
    message = str(info.value)
    assert f"--set {key}: unknown key" in message


def test_unknown_key_lists_known_keys():
    with pytest.raises(StudybenchError, match=r"known: split.kind, split.test_size, split.val_size"):
        apply_overrides(LyricsConfig(), {"split.nope": 1})


@pytest.mark.parametrize("item, key", [
    ("split.test_size=abc", "split.test_size"),
    ("split.test_size=true", "split.test_size"),
    ("clean.min_tokens=2.5", "clean.min_tokens"),
    ("clean.min_tokens=many", "clean.min_tokens"),
    ("clean.dedupe=maybe", "clean.dedupe"),
])
def test_wrong_type_names_the_key(item, key):
    with pytest.raises(StudybenchError) as info:
        apply_overrides(LyricsConfig(), parse_assignments([item]))
    assert f"--set {key}: expected" in str(info.value)
    assert item.split("=", 1)[1].casefold() in str(info.value).casefold()  # and the bad value


def test_setting_a_group_or_a_subkey_of_a_leaf_is_an_error():
    with pytest.raises(StudybenchError, match="--set split: is a group"):
        apply_overrides(LyricsConfig(), {"split": 1})
    with pytest.raises(StudybenchError, match="split.kind has no sub-keys"):
        apply_overrides(LyricsConfig(), {"split.kind.x": 1})


def test_string_settings_keep_yaml_boolean_words_as_text():
    config = apply_overrides(LyricsConfig(), parse_assignments(["clean.default_language=no",
                                                                "data.columns.text=on"]))
    assert config.clean.default_language == "no"
    assert config.data.columns.text == "on"


def test_config_round_trips_through_dict():
    config = apply_overrides(LyricsConfig(), {"split.kind": "artist", "data.columns.text": "body",
                                              "clean.min_tokens": 4})
    data = to_dict(config)
    assert data["split"] == {"kind": "artist", "test_size": 0.2, "val_size": 0.1}
    assert data["data"]["columns"]["text"] == "body"
    assert from_dict(LyricsConfig, data) == config


def test_split_overrides_separates_model_keys():
    run, model = split_overrides({"model.C": 2, "split.kind": "artist", "model.max_depth": [3]})
    assert run == {"split.kind": "artist"}
    assert model == {"C": 2, "max_depth": [3]}


def test_yaml_overrides_are_flattened(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("split:\n  test_size: 0.3\ndata:\n  columns:\n    text: body\nmodel:\n  C: [1, 2]\n")
    assert load_yaml_overrides(path) == {"split.test_size": 0.3, "data.columns.text": "body", "model.C": [1, 2]}


def test_yaml_override_errors(tmp_path):
    with pytest.raises(StudybenchError, match="config file not found"):
        load_yaml_overrides(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("split: [unclosed\n")
    with pytest.raises(StudybenchError, match="bad.yaml: not valid YAML"):
        load_yaml_overrides(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(StudybenchError, match="expected a mapping"):
        load_yaml_overrides(listy)


# --------------------------------------------------------------------------- model parameters


def test_model_params_list_override():
    params = registry.get("tfidf_logreg").resolve("seed", {"C": [2, 8]})
    assert params.C == (2.0, 8.0)
    assert all(type(c) is float for c in params.C)


def test_model_params_scalar_override_and_optional():
    spec = registry.get("tfidf_logreg")
    params = spec.resolve("tuned", parse_assignments(["max_features=null", "ngram_max=3",
                                                      "class_weight=none"]))
    assert params.max_features is None
    assert params.ngram_max == 3
    assert params.class_weight is None
    assert params.C == tuple(spec.presets["tuned"]["C"])  # the preset's grid stays
    assert spec.resolve("seed", {"max_features": 100}).max_features == 100


@pytest.mark.parametrize("item, expected", [("C=2", (2.0,)), ("C=1,4", (1.0, 4.0))])
def test_model_params_scalar_or_comma_list_for_a_tuple(item, expected):
    params = registry.get("tfidf_logreg").resolve("seed", parse_assignments([item]))
    assert params.C == expected


def test_model_params_unknown_key_names_it():
    with pytest.raises(StudybenchError, match=r"--set model.nope: unknown key \(known: model.artist_dropout"):
        registry.get("tfidf_logreg").resolve("seed", {"nope": 1})


def test_model_params_wrong_type_names_it():
    with pytest.raises(StudybenchError, match="--set model.ngram_max: expected int, got 'two'"):
        registry.get("tfidf_logreg").resolve("seed", {"ngram_max": "two"})


@pytest.mark.parametrize("key, value", [("split.test_size", "1.0"), ("split.val_size", "0.0"),
                                        ("clean.min_tokens", "-1"), ("split.test_size", "-0.2")])
def test_values_outside_a_settings_range_are_refused_naming_key_and_value(key, value):
    with pytest.raises(StudybenchError, match=rf"--set {key}={value}: expected"):
        apply_overrides(LyricsConfig(), parse_assignments([f"{key}={value}"]))


def test_ranges_hold_for_model_parameters_and_lists_item_by_item():
    from studybench import registry

    with pytest.raises(StudybenchError, match=r"train.epochs=0: expected a whole number ≥ 1"):
        registry.get("lstm").resolve("tuned", {"train.epochs": "0"})
    with pytest.raises(StudybenchError, match=r"transfer.fractions=0.5,1.5"):
        apply_overrides(ImagesConfig(), {"transfer.fractions": "0.5,1.5"})
    assert apply_overrides(ImagesConfig(), {"transfer.epochs": "0"}).transfer.epochs == 0  # 0: the CNN's own
