"""The image study end to end on a tiny CIFAR-10 folder: block-1 models, transfer arms,
run folders, reuse, reproducibility, and the CLI's errors."""

from __future__ import annotations

import json
import pickle
import re

import pytest
from conftest import write_cifar
from typer.testing import CliRunner

from studybench.cli import app
from studybench.errors import StudybenchError
from studybench.results import gains_over_scratch, summarize_images
from studybench.studies.images import run_images

QUICK = {"train.epochs": 2, "train.batch_size": 16, "model.widths": "8,16,16", "transfer.fractions": "0.5,1.0"}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar(root, "cifar10", n_train=12, n_test=4)
    return root


@pytest.fixture(scope="module")
def study(cifar, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    overrides = {**QUICK, "transfer.arms": "scratch,cnn_frozen,cnn_finetune,ae_frozen,cnn_ae_concat"}
    tables = run_images(cifar, models="cnn_basic,cnn_sigmoid_out", seeds="0", preset="tuned",
                        overrides=overrides, out=out)
    return out, overrides, tables


def test_block1_and_transfer_tables(study):
    out, _, (block1, transfer) = study
    # the autoencoder is trained because arms need it, though not asked for by --models
    assert block1["model"].tolist() == ["cnn_basic", "cnn_sigmoid_out", "conv_autoencoder"]
    ae = block1.set_index("model").loc["conv_autoencoder"]
    assert ae["task"] == "reconstruction" and ae["mse_mean"] > 0 and ae["accuracy_mean"] != ae["accuracy_mean"]
    assert (transfer.groupby("fraction")["arm"].apply(list) == [
        ["scratch", "cnn_frozen", "cnn_finetune", "ae_frozen", "cnn_ae_concat"]] * 2).all()
    half = transfer[transfer.fraction == 0.5]
    assert (half["n_train"] == 24).all()  # half of block 2's 48 training images (60 minus 20 % validation)
    frozen = transfer.set_index(["arm", "fraction"]).loc[("cnn_frozen", 1.0)]
    assert frozen["n_trainable"] < frozen["n_params"]


def test_run_folders_record_blocks_and_sources(study):
    out, _, _ = study
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 3 + 10 and not any(r.endswith(".partial") for r in runs)
    b1 = [r for r in runs if r.startswith("cnn_basic.tuned.b1.s0-")][0]
    config = json.loads((out / "runs" / b1 / "config.json").read_text())
    blocks = config["images"]["blocks"]
    assert len(blocks) == 2 and set(blocks[0]).isdisjoint(blocks[1]) and len(blocks[0]) == 5
    assert config["block_classes"] == blocks[0]
    arm = [r for r in runs if r.startswith("cnn_finetune.tuned.b2.f1.s0-")][0]
    arm_config = json.loads((out / "runs" / arm / "config.json").read_text())
    assert arm_config["sources"]["cnn"] == b1 and arm_config["block_classes"] == blocks[1]
    ae_run = [r for r in runs if r.startswith("conv_autoencoder")][0]
    assert (out / "runs" / ae_run / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "runs" / ae_run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mse", "psnr"}  # never "accuracy" for a reconstruction


def test_rerun_reuses_runs_and_same_seed_reproduces(study, cifar, tmp_path):
    out, overrides, (block1, transfer) = study
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = run_images(cifar, models="cnn_basic,cnn_sigmoid_out", seeds="0", overrides=overrides, out=out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps  # nothing retrained
    assert again[1]["accuracy_mean"].tolist() == transfer["accuracy_mean"].tolist()
    fresh = run_images(cifar, models="cnn_basic,cnn_sigmoid_out", seeds="0", overrides=overrides,
                       out=tmp_path / "fresh")  # trained again from nothing
    assert fresh[0]["accuracy_mean"].tolist()[:2] == block1["accuracy_mean"].tolist()[:2]
    assert fresh[1]["accuracy_mean"].tolist() == transfer["accuracy_mean"].tolist()


def test_transfer_from_a_given_source_run(study, cifar, tmp_path):
    out, _, _ = study
    source = [p for p in (out / "runs").iterdir() if p.name.startswith("cnn_basic.tuned.b1")][0]
    _, transfer = run_images(cifar, models="cnn_tanh", seeds="0",
                             overrides={**QUICK, "transfer.arms": "cnn_frozen", "transfer.fractions": "1.0",
                                        "transfer.source": str(source)}, out=tmp_path / "b")
    assert transfer["arm"].tolist() == ["cnn_frozen"]
    runs = [p.name for p in (tmp_path / "b" / "runs").iterdir()]
    assert not any(r.startswith("cnn_basic") for r in runs)  # the given source is not retrained


@pytest.mark.parametrize("overrides, message", [
    ({"transfer.arms": "warm"}, "unknown arm 'warm'"),
    ({"transfer.fractions": "0"}, "transfer.fractions=0.0: expected a number > 0 and ≤ 1"),
    ({"transfer.epochs": "-1"}, "transfer.epochs=-1: expected a whole number ≥ 0"),
    ({"transfer.min_steps": "-5"}, "transfer.min_steps=-5: expected a whole number ≥ 0"),
    ({"data.blocks": "1"}, "transfer needs two blocks"),
    ({"model.nope": "1"}, "--set model.nope: unknown key"),
    ({"transfer.source": "/nowhere", "transfer.arms": "cnn_frozen"}, "nowhere: not a finished image run"),
])
def test_bad_settings(cifar, tmp_path, overrides, message):
    with pytest.raises(StudybenchError, match=message):
        run_images(cifar, models="cnn_basic", overrides={**QUICK, **overrides}, out=tmp_path)


@pytest.mark.parametrize("extra", [{"model.cutout": "4"}, {"model.bias_lr_scale": "64"}])
def test_transfer_refuses_block1_options_its_pretrained_arms_would_not_share(cifar, tmp_path, extra):
    overrides = {**QUICK, "transfer.cnn": "whitened_cnn", "model.whiten_images": 8, **extra}
    with pytest.raises(StudybenchError, match=re.escape(next(iter(extra)))):
        run_images(cifar, models="whitened_cnn", overrides={**overrides, "transfer.arms": "scratch,cnn_finetune"},
                   out=tmp_path / "both")
    assert not (tmp_path / "both" / "runs").exists() or not any((tmp_path / "both" / "runs").iterdir())
    # block 1 alone, or scratch alone, takes them
    run_images(cifar, models="whitened_cnn", overrides={**overrides, "transfer.arms": "scratch"}, out=tmp_path / "s")
    assert any(p.name.startswith("scratch.") for p in (tmp_path / "s" / "runs").iterdir())


@pytest.mark.parametrize("overrides, noted", [({"train.precision": "bf16"}, True), ({}, False),
                                               ({"train.precision": "32"}, False)])
def test_emulated_bf16_is_noted(cifar, monkeypatch, overrides, noted):
    """bf16 asked for on a CPU without native bf16 runs 7-12x slower, and is said; the tuned
    presets' ``auto`` is not (it trains in fp32 there)."""
    from studybench.studies.images import plan_images
    from studybench.training import engine

    monkeypatch.setattr(engine, "native_bf16", lambda: False)
    said = []
    plan_images(cifar, models="cnn_basic", preset="tuned", overrides=overrides, log=said.append)
    assert any("no native bf16" in line and "train.precision=auto" in line for line in said) == noted


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "32")])
def test_auto_precision_trains_in_bf16_only_where_it_is_native(cifar, tmp_path, monkeypatch, native, expected):
    """The tuned image presets say ``auto``: the run trains and records bf16 where the machine
    has it natively, fp32 elsewhere, and the run id does not depend on the machine."""
    from studybench import registry
    from studybench.training import engine

    monkeypatch.setattr(engine, "native_bf16", lambda: native)
    assert registry.get("cnn_basic").resolve("tuned").train.precision == "auto"
    run_images(cifar, models="cnn_basic", preset="tuned", out=tmp_path / repr(native),
               overrides={**QUICK, "transfer.arms": "[]"})
    (run,) = (tmp_path / repr(native) / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["selection"]["precision"] == expected
    assert json.loads((run / "config.json").read_text())["params"]["train"]["precision"] == "auto"


def test_lyrics_models_are_refused(cifar, tmp_path):
    with pytest.raises(StudybenchError, match="belongs to the lyrics study"):
        run_images(cifar, models="lstm", out=tmp_path)


def _cli(*args):
    result = CliRunner().invoke(app, ["run", "images", *args])
    return result.exit_code, result.output


def test_cli_errors_are_one_line(tmp_path):
    code, output = _cli("--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert code == 2 and output.strip().endswith("missing: no such folder") and "Traceback" not in output
    folder = write_cifar(tmp_path / "c", "cifar10", n_train=2, n_test=1)
    raw = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(raw[:100])
    code, output = _cli("--data", str(tmp_path / "c"), "--out", str(tmp_path / "o"))
    assert code == 2 and "test_batch: truncated or corrupt pickle" in output and "Traceback" not in output
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": 1}))
    code, output = _cli("--data", str(tmp_path / "c"), "--models", "cnn_basc", "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown model 'cnn_basc' (did you mean cnn_basic" in output
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    code, output = _cli("--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "o"))
    assert code == 2 and "imgs: one class folder (cat)" in output
    (tmp_path / "imgs" / "dog").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "a.txt").write_text("hello")
    code, output = _cli("--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "o"))
    assert code == 2 and "cat/a.txt: not a readable image" in output


def test_cli_prints_both_tables(cifar, tmp_path):
    code, output = _cli("--data", str(cifar), "--models", "cnn_basic", "--seeds", "0",
                        "--set", "train.epochs=1", "--set", "train.batch_size=16",
                        "--set", "model.widths=8,8,8", "--set", "transfer.arms=scratch,cnn_finetune",
                        "--set", "transfer.fractions=0.5,1", "--out", str(tmp_path / "o"))
    assert code == 0, output
    assert "Block 1: test metrics" in output and "Block 2 transfer" in output
    assert "cnn_finetune" in output
    assert re.search(r"against scratch, test accuracy paired by seed: 0.5: [+-]\d+\.\d points "
                     r"\(1 seed\); 1: ", output)  # one seed: the gain alone, no "± 0.0"


def test_gains_over_scratch_are_paired_by_seed():
    import pandas as pd

    rows = []
    # seed 1 is an easier draw for both arms: accuracies spread by 0.2 across seeds, the gain by 0.01
    for seed, base in ((0, 0.5), (1, 0.7), (2, 0.6)):
        rows += [{"arm": "scratch", "preset": "tuned", "fraction": 1.0, "seed": seed, "accuracy": base},
                 {"arm": "cnn_finetune", "preset": "tuned", "fraction": 1.0, "seed": seed,
                  "accuracy": base - 0.02 + 0.01 * seed}]
    rows += [{"arm": "cnn_finetune", "preset": "tuned", "fraction": 1.0, "seed": 9, "accuracy": 0.99},  # unpaired
             {"arm": "cnn_finetune", "preset": "seed", "fraction": 1.0, "seed": 0, "accuracy": 0.9},  # other preset
             {"arm": "scratch", "preset": "seed", "fraction": 1.0, "seed": 0, "accuracy": 0.8}]
    gains = gains_over_scratch(pd.DataFrame(rows)).set_index(["arm", "preset"])
    tuned = gains.loc[("cnn_finetune", "tuned")]
    assert tuned["gain_seeds"] == 3 and tuned["gain_mean"] == pytest.approx(-0.01)
    assert tuned["gain_draws"] == 1  # records without class-block draws: one draw
    assert tuned["gain_std"] == pytest.approx(0.01)
    single = gains.loc[("cnn_finetune", "seed")]
    assert single["gain_seeds"] == 1 and single["gain_mean"] == pytest.approx(0.1) and single["gain_std"] == 0
    assert "scratch" not in gains.index.get_level_values("arm")
    # without a scratch arm there is nothing to pair with: no gains, and the tables still build
    alone = pd.DataFrame(rows).query("arm != 'scratch'").assign(
        stage="transfer", model="transfer:cnn_finetune", task="classification", macro_f1=0.5, mse=None,
        psnr=None, fit_seconds=1.0, n_params=10, n_trainable=10, n_train=100)
    assert gains_over_scratch(alone).empty
    _, transfer = summarize_images(alone)
    assert len(transfer) == 2 and transfer["gain_mean"].isna().all()
    block1_only = alone.assign(stage="block1", arm=None, model="cnn_basic")  # transfer.arms=[]
    block1, transfer = summarize_images(block1_only)
    assert len(block1) == 2 and transfer.empty


def test_gains_are_paired_within_a_class_block_draw_and_trunk_then_pooled():
    import pandas as pd

    rows = []
    # draw 1 is a much easier task: scratch scores 0.9 there and 0.5 on draw 0, at the same seed
    for draw, base, gain in ((0, 0.5, 0.04), (1, 0.9, -0.02)):
        for seed in (0, 1):
            for trunk in ("cnn_basic", "whitened_cnn"):
                bonus = 0.1 if trunk == "whitened_cnn" else 0.0
                rows += [{"arm": "scratch", "preset": "tuned", "trunk": trunk, "block_seed": draw, "fraction": 0.1,
                          "seed": seed, "accuracy": base + bonus},
                         {"arm": "lp_ft", "preset": "tuned", "trunk": trunk, "block_seed": draw, "fraction": 0.1,
                          "seed": seed, "accuracy": base + bonus + gain + 0.001 * seed}]
    frame = pd.DataFrame(rows)
    per_draw = gains_over_scratch(frame).set_index(["trunk", "block_seed"])
    assert per_draw.loc[("cnn_basic", 0), "gain_mean"] == pytest.approx(0.0405)  # never against draw 1's scratch
    assert per_draw.loc[("cnn_basic", 1), "gain_mean"] == pytest.approx(-0.0195)
    assert per_draw.loc[("whitened_cnn", 0), "gain_mean"] == pytest.approx(0.0405)  # nor another trunk's
    pooled = gains_over_scratch(frame, keys=("preset", "trunk")).set_index("trunk")
    assert pooled.loc["cnn_basic", "gain_seeds"] == 4  # 2 draws x 2 seeds
    assert pooled.loc["cnn_basic", "gain_mean"] == pytest.approx(0.0105)
    assert pooled.loc["cnn_basic", "gain_std"] == pytest.approx(
        pd.Series([0.04, 0.041, -0.02, -0.019]).std())
    assert pooled.loc["cnn_basic", "gain_draws"] == 2
    # a draw without its scratch runs (not run yet) gives no pairs: the pooled gain says it has one draw
    partial = frame[~((frame.arm == "scratch") & (frame.block_seed == 1))]
    pooled = gains_over_scratch(partial, keys=("preset", "trunk")).set_index("trunk")
    assert pooled.loc["cnn_basic", "gain_seeds"] == 2 and pooled.loc["cnn_basic", "gain_draws"] == 1


def test_gains_by_draw_keep_presets_apart():
    """The draw-by-draw table never averages the trunk or scratch over presets: one row per
    draw and preset, each with its own preset's block-1 runs."""
    import pandas as pd

    from studybench.reporting.sections import _gains_by_draw

    transfer, block1 = [], []
    for draw in (0, 1):
        for preset, base in (("seed", 0.5), ("tuned", 0.7)):
            block1.append({"block_seed": draw, "preset": preset, "accuracy": base + 0.2})
            for arm, gain in (("scratch", 0.0), ("lp_ft", 0.03 + draw / 100)):
                transfer.append({"arm": arm, "preset": preset, "trunk": "whitened_cnn", "block_seed": draw,
                                 "fraction": 0.1, "seed": 0, "accuracy": base + gain,
                                 "blocks": f"a{draw}, b | c, d{draw}"})
    headers, rows = _gains_by_draw(pd.DataFrame(transfer), pd.DataFrame(block1), 0.1, ["lp_ft"])
    assert headers == ["draw", "preset", "block 1", "block 2", "trunk on block 1", "scratch at 0.1", "lp_ft at 0.1"]
    assert [row[:2] for row in rows] == [(0, "seed"), (0, "tuned"), (1, "seed"), (1, "tuned")]
    # one seed each: the mean alone, no "± 0.000" that would claim there was no spread
    assert rows[1][2:] == ("a0, b", "c, d0", "0.900", "0.700", "+3.0")
    assert rows[2][4:] == ("0.700", "0.500", "+4.0")


def test_block1_table_is_sorted_draw_by_draw_then_best_first():
    """The block-1 table reads like the lyrics tables: best first, the autoencoder (no accuracy)
    last; with several class-block draws each draw's rows together, in draw order, whatever
    order the run folders were found in."""
    import pandas as pd

    from studybench.reporting.sections import _block1_table

    def run(model, draw, seed, accuracy):
        return {"model": model, "preset": "tuned", "block_seed": draw, "seed": seed, "accuracy": accuracy,
                "mse": float("nan") if accuracy == accuracy else 0.002, "psnr": float("nan"),
                "fit_seconds": 1.0, "n_params": 10, "blocks": f"draw {draw}"}

    nan = float("nan")
    found = [run("whitened_cnn", 2, 0, 0.91), run("conv_autoencoder", 0, 0, nan), run("cnn_tanh", 0, 0, 0.80),
             run("whitened_cnn", 0, 0, 0.86), run("whitened_cnn", 0, 1, 0.88), run("whitened_cnn", 1, 0, 0.93),
             run("cnn_basic", 0, 0, 0.866)]
    table = _block1_table(pd.DataFrame(found), draws=True)
    assert list(zip(table.block_seed, table.model)) == [
        (0, "whitened_cnn"), (0, "cnn_basic"), (0, "cnn_tanh"), (0, "conv_autoencoder"),
        (1, "whitened_cnn"), (2, "whitened_cnn")]
    assert table.loc[0, "seeds"] == 2 and table.loc[0, "accuracy"] == pytest.approx(0.87)
    one_draw = _block1_table(pd.DataFrame([r for r in found if r["block_seed"] == 0]), draws=False)
    assert list(one_draw.model) == ["whitened_cnn", "cnn_basic", "cnn_tanh", "conv_autoencoder"]


def test_draw_table_shows_how_well_the_frozen_trunk_separates_block_2():
    """Where lp_ft ran, the draw-by-draw table carries its probe phase's validation accuracy
    (the frozen block-1 trunk's features of block 2): the last probe row of each run's history,
    never a fine-tuning row, mean ± std over seeds; without lp_ft the column is left out."""
    from types import SimpleNamespace

    import pandas as pd

    from studybench.reporting.sections import _gains_by_draw

    def history(probe):
        return pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [probe, 0.95, 0.97],
                             "phase": ["probe", "tune", "tune"]})

    transfer, block1 = [], [{"block_seed": d, "preset": "tuned", "accuracy": 0.9} for d in (0, 1)]
    for draw, probes in ((0, (0.60, 0.64)), (1, (0.70, None))):
        for seed, probe in enumerate(probes):
            for arm, accuracy in (("scratch", 0.7), ("lp_ft", 0.72)):
                run = SimpleNamespace(history=history(probe) if arm == "lp_ft" and probe else None)
                transfer.append({"arm": arm, "preset": "tuned", "block_seed": draw, "fraction": 0.1, "seed": seed,
                                 "accuracy": accuracy, "blocks": "a, b | c, d", "run": run})
    headers, rows = _gains_by_draw(pd.DataFrame(transfer), pd.DataFrame(block1), 0.1, ["lp_ft"])
    assert headers[4] == "frozen trunk's probe at 0.1 (val.)"
    assert rows[0][4] == "0.620 ± 0.028"  # seeds 0 and 1 of draw 0
    assert rows[1][4] == "0.700"  # seed 1 of draw 1 has no history: one seed, its score alone
    without = pd.DataFrame(transfer).query("arm != 'lp_ft'")
    headers, _ = _gains_by_draw(without, pd.DataFrame(block1), 0.1, [])
    assert "frozen trunk's probe at 0.1 (val.)" not in headers


def test_the_report_shows_every_class_block_draw_and_pools_them(cifar, tmp_path):
    import pandas as pd

    from studybench.reporting.report import build_report

    overrides = {**QUICK, "transfer.arms": "scratch,lp_ft", "transfer.fractions": "1.0"}
    for draw in (0, 1):
        run_images(cifar, models="whitened_cnn", seeds="0,1", preset="tuned",
                   overrides={**overrides, "data.block_seed": draw, "transfer.cnn": "whitened_cnn",
                              "model.whiten_images": 8}, out=tmp_path / f"draw{draw}")
    build_report(tmp_path, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert 0 < markdown.index("trunk `whitened_cnn`, class-block draw 0") < markdown.index(
        "trunk `whitened_cnn`, class-block draw 1")  # draw by draw
    assert "Images: transfer pooled over 2 class-block draws · trunk `whitened_cnn`" in markdown
    pooled = markdown.split("Images: transfer pooled over 2 class-block draws")[1]
    assert "(4)" in pooled.split("\n| lp_ft")[1].split("\n")[0]  # 2 draws x 2 seeds
    # draw by draw: the trunk's block-1 accuracy (its own draw's runs) beside scratch and the gain
    by_draw = pooled.split("| draw | block 1 | block 2 | trunk on block 1 | frozen trunk's probe at 1 (val.) "
                           "| scratch at 1 | lp_ft at 1 |")[1]
    for draw in (0, 1):
        runs = [json.loads(p.read_text()) for p in (tmp_path / f"draw{draw}").glob("runs/*/metrics.json")]
        block1 = [m["test"]["accuracy"] for m in runs if m["stage"] == "block1"]
        scratch = [m["test"]["accuracy"] for m in runs if m.get("arm") == "scratch"]
        lp_ft = [m["test"]["accuracy"] for m in runs if m.get("arm") == "lp_ft"]
        probes = [h.loc[h.phase == "probe", "val_accuracy"].iloc[-1] for h in
                  (pd.read_csv(p) for p in (tmp_path / f"draw{draw}").glob("runs/lp_ft.*/history.csv"))]
        row = next(line for line in by_draw.splitlines() if line.startswith(f"| {draw} |")).split(" | ")
        assert len(block1) == 2 and row[3].startswith(f"{sum(block1) / 2:.3f} ± ")
        assert len(probes) == 2 and row[4].startswith(f"{sum(probes) / 2:.3f} ± ")
        assert row[5].startswith(f"{sum(scratch) / 2:.3f} ± ")
        assert row[6].startswith(f"{100 * (sum(lp_ft) - sum(scratch)) / 2:+.1f} ± ")
    assert "over 2 class-block draws" in markdown.split("Findings")[1].split("\n###")[0]
    protocol = markdown.split("## Protocol")[1].split("\n| seeds")[0]  # its data row
    assert "2 class-block draws: 0: " in protocol  # each draw's blocks, not one draw's as if it were all
    for draw in (0, 1):
        config = json.loads(next((tmp_path / f"draw{draw}").glob("runs/*/config.json")).read_text())
        assert f"{draw}: " + r" \| ".join(", ".join(b) for b in config["images"]["blocks"]) in protocol  # | escaped


def test_several_class_block_draws_are_one_grid_with_the_run_ids_of_each_draw_alone(cifar):
    """--draws plans each class-block draw as it would be planned alone (same run ids, so runs
    made one draw at a time are reused), every transfer arm starting from its own draw's
    block-1 run; a draw named twice, a bad one, or --draws beside data.block_seed is refused."""
    from studybench.studies.images import plan_images

    base = {**QUICK, "transfer.arms": "scratch,cnn_finetune", "transfer.fractions": "1.0"}
    said = []
    together = plan_images(cifar, models="cnn_basic", seeds="0,1", overrides=base, draws="0,2", log=said.append)
    alone = {d: plan_images(cifar, models="cnn_basic", seeds="0,1", overrides={**base, "data.block_seed": d})
             for d in (0, 2)}
    assert [j.run_id for j in together.jobs] == [j.run_id for d in (0, 2) for j in alone[d].jobs]
    assert set(together.payloads) == set(alone[0].payloads) | set(alone[2].payloads)
    assert len(together.payloads) == 4  # two blocks per draw, each prepared once
    block1 = {j.run_id: j.record["config"]["block_seed"] for j in together.jobs if j.record["stage"] == "block1"}
    for job in together.jobs:
        if job.record["stage"] == "transfer":  # never a trunk trained on another draw's block 1
            assert block1[job.sources["cnn"]] == job.record["config"]["block_seed"]
            assert job.inputs[0].endswith(":b2") and job.inputs[0] in alone[job.record["config"]["block_seed"]].payloads
    assert sum("class-block draw" in line for line in said) == 2
    for draws, message in (("0,0", "--draws: 0 given twice"), ("a", "--draws 'a': expected whole numbers")):
        with pytest.raises(StudybenchError, match=message):
            plan_images(cifar, models="cnn_basic", overrides=base, draws=draws)
    with pytest.raises(StudybenchError, match="--draws and data.block_seed"):
        plan_images(cifar, models="cnn_basic", overrides={**base, "data.block_seed": 1}, draws="0,1")


def test_cli_runs_several_draws_in_one_command(cifar, tmp_path):
    code, output = _cli("--data", str(cifar), "--models", "cnn_basic", "--seeds", "0", "--draws", "0,1",
                        "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "model.widths=8,8,8",
                        "--set", "transfer.arms=scratch,cnn_finetune", "--set", "transfer.fractions=1",
                        "--out", str(tmp_path / "o"))
    assert code == 0, output
    import pandas as pd

    results = pd.read_csv(tmp_path / "o" / "results.csv")
    per_draw = results.groupby("block_seed")["model"].apply(sorted).to_dict()
    assert per_draw == {d: ["cnn_basic", "transfer:cnn_finetune", "transfer:scratch"] for d in (0, 1)}
    report = (tmp_path / "o" / "report.md").read_text()
    assert "Images: transfer pooled over 2 class-block draws" in report
    code, output = _cli("--data", str(cifar), "--draws", "0,x", "--out", str(tmp_path / "bad"))
    assert code == 2 and "--draws 'x': expected whole numbers" in output and "Traceback" not in output
    assert not (tmp_path / "bad").exists()


def test_a_step_floor_lengthens_small_shares_and_leaves_other_run_ids_alone(cifar, tmp_path):
    from studybench.models.image.transfer import transfer_epochs
    from studybench.studies.images import plan_images

    base = {**QUICK, "transfer.arms": "scratch", "transfer.fractions": "0.5"}
    plain = {j.run_id for j in plan_images(cifar, models="cnn_basic", overrides=base).jobs}
    floored = {j.run_id for j in plan_images(cifar, models="cnn_basic",
                                             overrides={**base, "transfer.min_steps": "0"}).jobs}
    assert plain == floored  # 0 is off and not in the record: earlier runs keep their ids

    run_images(cifar, models="cnn_basic", seeds="0", overrides={**base, "transfer.min_steps": "6"}, out=tmp_path)
    metrics = json.loads(next(tmp_path.glob("runs/scratch.*/metrics.json")).read_text())
    expected = transfer_epochs(2, 6, metrics["sizes"]["train"], 16)
    assert expected > 2 and metrics["selection"]["epochs_run"] == expected
