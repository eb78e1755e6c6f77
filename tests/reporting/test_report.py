"""The report builder on synthetic run folders: tables, figures, Markdown, missing and broken
runs, and that it never needs model code."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from studybench.errors import StudybenchError
from studybench.reporting.collect import collect
from studybench.reporting.report import build_report

CLASSES = ["jazz", "pop", "rock"]


def _lyrics_run(runs: Path, model: str, features: str, split: str, seed: int, f1: float,
                history: bool = False) -> str:
    run_id = f"{model}.{features}.tuned.{split}.s{seed}-abc{seed}"
    folder = runs / run_id
    folder.mkdir(parents=True)
    config = {"study": "lyrics", "model": model, "features": features, "preset": "tuned", "seed": seed,
              "data": {"path": "/data/songs.csv", "rows": 1234, "schema": "tcc_ceds"}, "run_id": run_id}
    per_class = {c: {"precision": f1, "recall": f1, "f1": f1 - 0.1 * i, "support": 10} for i, c in enumerate(CLASSES)}
    metrics = {"run_id": run_id, "model": model, "features": features, "preset": "tuned", "seed": seed,
               "split": split, "sizes": {"train": 80, "val": 10, "test": 30},
               "test": {"accuracy": f1 + 0.02, "macro_f1": f1, "per_class": per_class,
                        "confusion_matrix": [[8, 1, 1], [2, 7, 1], [0, 3, 7]], "class_names": CLASSES},
               "fit_seconds": 1.5, "predict_seconds": 0.1, "n_params": 1000}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "environment.json").write_text(json.dumps(
        {"python": "3.11.7", "platform": "TestOS", "cpu_count": 2, "packages": {"torch": "2.13.0"},
         "git": {"commit": "0123456789abcdef"}, "argv": ["studybench", "run", "lyrics"]}))
    if history:
        (folder / "history.csv").write_text(
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,1.0,0.4,1.1,0.35\n2,0.8,0.5,1.0,0.4\n")
    return run_id


def _image_run(runs: Path, stage: str, name: str, seed: int, accuracy: float | None, fraction: float = 1.0):
    run_id = f"{name}.tuned.{stage}.f{fraction:g}.s{seed}-x{seed}"
    folder = runs / run_id
    folder.mkdir(parents=True)
    task = "reconstruction" if accuracy is None else "classification"
    test = {"mse": 0.01, "psnr": 20.0} if accuracy is None else {"accuracy": accuracy, "macro_f1": accuracy}
    (folder / "config.json").write_text(json.dumps({
        "study": "images", "images": {"dataset": "cifar10", "source": "/data/cifar",
                                      "blocks": [["cat", "dog"], ["ship", "truck"]]}}))
    (folder / "metrics.json").write_text(json.dumps({
        "stage": stage, "model": name if stage == "block1" else f"transfer:{name}",
        "arm": None if stage == "block1" else name, "fraction": fraction, "preset": "tuned", "seed": seed,
        "task": task, "sizes": {"train": int(1000 * fraction), "val": 100, "test": 200}, "test": test,
        "selection": {"epochs_run": 2}, "fit_seconds": 3.0, "predict_seconds": 0.2, "n_params": 5000,
        "n_trainable": 5000}))
    (folder / "history.csv").write_text(
        "epoch,train_loss,val_loss,val_accuracy,val_psnr\n1,1.0,1.1,0.5,\n2,0.9,1.0,0.6,\n"
        if accuracy is not None else "epoch,train_loss,val_loss,train_psnr,val_psnr\n1,0.02,0.02,17,17\n")
    if accuracy is None:
        from PIL import Image

        Image.new("RGB", (32, 8), (200, 100, 0)).save(folder / "reconstructions.png")


@pytest.fixture
def study(tmp_path):
    lyrics = tmp_path / "study" / "lyrics" / "runs"
    for seed, bump in enumerate((0.0, 0.02, 0.04)):
        for split in ("artist", "random"):
            _lyrics_run(lyrics, "majority", "lyrics", split, seed, 0.1)
            _lyrics_run(lyrics, "tfidf_logreg", "lyrics", split, seed, 0.5 + bump)
            _lyrics_run(lyrics, "lstm", "lyrics+artist", split, seed,
                        (0.8 if split == "random" else 0.45) + bump, history=True)
    images = tmp_path / "study" / "images" / "runs"
    for seed in (0, 1):
        _image_run(images, "block1", "cnn_basic", seed, 0.8 + seed / 100)
        _image_run(images, "block1", "conv_autoencoder", seed, None)
        for fraction in (0.1, 1.0):
            for arm, acc in (("scratch", 0.5), ("cnn_finetune", 0.6)):
                _image_run(images, "transfer", arm, seed, acc * (1 + fraction) / 2, fraction)
    return tmp_path / "study"


def test_report_has_every_section_table_and_figure(study, tmp_path):
    page = build_report(study, tmp_path / "out")
    text = page.read_text()
    for heading in ("Protocol", "Lyrics → genre: songs.csv, artist split", "songs.csv, random split",
                    "Random against artist-grouped split", "Images: block 1", "Images: transfer to block 2",
                    "Learning curves"):
        assert heading in text, heading
    assert text.index("artist split") < text.index("random split")  # the honest split comes first
    # sorted by macro-F1, mean ± sample std over the three seeds
    rows = re.findall(r"<tr><td>(\w+)</td><td>([\w+]+)</td><td>tuned</td><td>3</td><td>[^<]*</td><td>([^<]*)</td>",
                      text)
    artist = rows[:3]
    assert [r[0] for r in artist] == ["tfidf_logreg", "lstm", "majority"]
    assert artist[0][2] == "0.520 ± 0.020" and artist[1][2] == "0.470 ± 0.020"
    assert "0.607" in text  # the study's published validation figure beside tfidf_logreg
    images = re.findall(r"<img src='data:image/png;base64,([^']+)' alt='([^']+)'", text)
    assert len(images) >= 9 and all(base64.b64decode(data)[:4] == b"\x89PNG" for data, _ in images)
    assert all(alt for _, alt in images)
    assert "0.505 ± 0.005" in text or "0.805 ± 0.007" in text  # block-1 mean ± std
    # fine-tuned transfer against scratch, paired by seed, at the smallest and largest fraction
    assert ("+5.5 ± 0.0 points with 10% of the block-2 training images (2 seeds); "
            "+10.0 ± 0.0 points with 100%") in text
    md = (tmp_path / "out" / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", md)
    assert linked and all((tmp_path / "out" / "figures" / f).is_file() for f in linked)
    assert "| tfidf_logreg | lyrics | tuned | 3 |" in md


def test_missing_files_are_named_and_the_report_goes_on(study, tmp_path):
    runs = study / "lyrics" / "runs"
    broken = next(runs.glob("lstm.*.artist.s2-*"))
    (broken / "metrics.json").unlink()
    (runs / "tfidf_logreg.lyrics.tuned.artist.s9-zzz.partial").mkdir()
    (study / "lyrics" / "plan.json").write_text(json.dumps(
        {"commands": [{"command": "studybench run lyrics --seeds 0,1,2,3", "run_ids": ["never.finished-1"]}]}))
    page = build_report(study, tmp_path / "out")
    text = page.read_text()
    assert f"{broken.name}: no metrics.json" in text
    assert "tfidf_logreg.lyrics.tuned.artist.s9-zzz" in text and "interrupted" in text
    assert "1 planned runs have not finished" in text and "never.finished-1" in text
    assert "studybench run lyrics --seeds 0,1,2,3" in text
    collected = collect(study)
    assert len(collected.lyrics) == 17 and collected.missing == ["never.finished-1"]


def test_a_run_copied_into_two_out_folders_counts_once(study, tmp_path):
    import shutil

    runs = study / "lyrics" / "runs"
    copy = study / "lyrics_again" / "runs"
    copy.mkdir(parents=True)
    for folder in runs.glob("lstm.*.artist.s*"):  # every lstm artist-split run, copied
        shutil.copytree(folder, copy / folder.name)
    lstm = sorted(p.name for p in copy.iterdir())
    (study / "lyrics_again" / "plan.json").write_text(json.dumps(  # planned here, finished in both
        {"commands": [{"command": "studybench run lyrics", "run_ids": lstm + ["never.finished-2"]}]}))
    (study / "a_plan_read_first" / "runs").mkdir(parents=True)  # sorts before lyrics/: nothing read yet
    (study / "a_plan_read_first" / "plan.json").write_text(json.dumps(
        {"commands": [{"command": "studybench run lyrics", "run_ids": lstm}]}))
    collected = collect(study)
    assert len(collected.lyrics) == 18 and len(collected.duplicates) == 3
    assert collected.missing == ["never.finished-2"]
    text = build_report(study, tmp_path / "out").read_text()
    assert "3 runs appear in more than one runs/ folder and are counted once" in text
    # three seeds, not six: the std is the same as without the copies
    assert re.search(r"<td>lstm</td><td>lyrics\+artist</td><td>tuned</td><td>3</td><td>[^<]*</td><td>0.470 ± 0.020", text)


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(StudybenchError, match="no such folder"):
        build_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudybenchError, match="no run folders found"):
        build_report(tmp_path / "empty")


def test_reporting_never_imports_models_or_training(study, tmp_path):
    code = ("import sys; from studybench.reporting.report import build_report; "
            f"build_report({str(study)!r}, {str(tmp_path / 'o')!r}); "
            "bad = [m for m in sys.modules if m.startswith(('torch', 'lightning', 'studybench.models', "
            "'studybench.training', 'sklearn'))]; print(bad); assert not bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_results_section_is_generated(study, tmp_path):
    from studybench.reporting.report import update_readme

    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nintro\n\n<!-- results:start -->\nold numbers 0.999\n<!-- results:end -->\n\nafter\n")
    update_readme(readme, study)
    text = readme.read_text()
    assert text.startswith("# Title\n\nintro\n\n<!-- results:start -->") and text.endswith("<!-- results:end -->\n\nafter\n")
    assert "old numbers" not in text and "| tfidf_logreg | lyrics | tuned | 3 |" in text
    assert "studybench run lyrics" in text and "![" not in text  # commands, no figures
    update_readme(readme, study)
    assert readme.read_text().count("<!-- results:start -->") == 1  # idempotent
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(StudybenchError, match="no <!-- results:start -->"):
        update_readme(tmp_path / "plain.md", study)
    # a second generated section, from other runs, leaves the first alone
    readme.write_text(readme.read_text() + "\n<!-- results-beyond:start -->\nold\n<!-- results-beyond:end -->\n")
    first = readme.read_text().split("<!-- results:end -->")[0]
    update_readme(readme, study, "results-beyond")
    text = readme.read_text()
    assert text.split("<!-- results:end -->")[0] == first and "\nold\n" not in text
    beyond = text.split("<!-- results-beyond:start -->")[1]
    assert "--readme-section results-beyond" in beyond and "| tfidf_logreg | lyrics | tuned | 3 |" in beyond
    with pytest.raises(StudybenchError, match="readme-section"):
        update_readme(readme, study, "bad name -->")


def test_protocol_names_every_commit_and_thread_setting(study, tmp_path):
    runs = sorted((study / "lyrics" / "runs").iterdir())
    for i, folder in enumerate(runs[:2]):  # two runs made on another commit, on one thread
        env = json.loads((folder / "environment.json").read_text())
        env["git"] = {"commit": "fedcba9876543210", "dirty": i == 1}
        env["threads"] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": None, "torch": 1}
        (folder / "environment.json").write_text(json.dumps(env))
    build_report(study, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    commits = next(line for line in md.splitlines() if line.startswith("| git commit |"))
    assert "fedcba987654 (1 run)" in commits and "fedcba987654 (uncommitted changes) (1 run)" in commits
    assert f"0123456789ab ({len(runs) - 2} runs)" in commits
    threads = next(line for line in md.splitlines() if line.startswith("| threads |"))
    assert "OMP_NUM_THREADS=1, torch=1 (2 runs)" in threads and "not recorded" in threads


def test_transfer_gains_are_paired_within_a_preset(study, tmp_path):
    runs = study / "images" / "runs"
    for folder in [f for f in runs.iterdir() if ".transfer." in f.name]:  # the same arms under the seed preset
        copy = runs / folder.name.replace(".tuned.", ".seed.")
        copy.mkdir()
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["preset"] = "seed"
        if metrics["arm"] == "scratch":
            metrics["test"]["accuracy"] -= 0.2  # a weaker scratch: the seed preset's gains are 20 points larger
        for name in ("config.json", "history.csv"):
            (copy / name).write_bytes((folder / name).read_bytes())
        (copy / "metrics.json").write_text(json.dumps(metrics))
    build_report(study, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| cnn_finetune · tuned | +5.5 ± 0.0 | +10.0 ± 0.0 |" in md
    assert "| cnn_finetune · seed | +25.5 ± 0.0 | +30.0 ± 0.0 |" in md
    assert "(`cnn_finetune`, seed preset) against scratch: +25.5 ± 0.0 points with 10%" in md


def test_the_report_leads_with_the_findings_and_folds_the_protocol(study, tmp_path):
    """A reader sees what was found first; the commands and unfinished runs stay, folded."""
    (study / "lyrics" / "plan.json").write_text(json.dumps({"commands": [
        {"command": "studybench run lyrics --data songs.csv --split artist", "run_ids": ["never.finished.s0-x"]}]}))
    build_report(study, tmp_path / "out")
    markdown = (tmp_path / "out" / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", markdown, flags=re.M)
    assert headings[0] == "Findings" and headings[-1] == "Protocol", headings
    findings = markdown.split("## Findings", 1)[1].split("\n## ", 1)[0]
    assert "songs.csv, artist split: the best model is `tfidf_logreg` (lyrics, tuned preset) at test " \
           "macro-F1 0.520 ± 0.020 (accuracy 0.540 ± 0.020, 3 seeds); the majority class scores 0.100" in findings
    assert "reaches macro-F1 0.820 on the random split but 0.470 on artists it never saw (+0.350)" in findings
    assert "the best network is `cnn_basic` (tuned preset) at test accuracy 0.805 ± 0.007 (2 seeds)" in findings
    assert "with 10% of block 2's training images the best arm, `cnn_finetune`, gains +5.5 ± 0.0 points" in findings
    assert "with 100% of block 2's training images the best arm, `cnn_finetune`, gains +10.0 ± 0.0 points" in findings
    protocol = markdown.split("## Protocol", 1)[1]
    assert re.search(r"<details><summary>2 commands made these runs</summary>\n\n`studybench run lyrics --data "
                     r"songs.csv --split artist`", protocol)
    assert "<details><summary>1 planned runs have not finished" in protocol and "`never.finished.s0-x`" in protocol
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index("Findings") < page.index("Protocol") and "<details><summary>" in page


def test_commands_show_the_program_as_studybench_however_it_was_started(study, tmp_path):
    """`python -m studybench.cli run …` records the module's file as argv[0]; the report shows
    the command a reader would type, as for the entry point, and a quoted argument stays one."""
    from studybench.records import command_line

    assert command_line(["/v/.venv/bin/studybench", "run", "lyrics"]) == "studybench run lyrics"
    assert command_line(["/w/src/studybench/cli.py", "run", "images", "--set", "transfer.arms=[]"]) \
        == "studybench run images --set 'transfer.arms=[]'"
    assert command_line(["/w/benchmarks/executors.py", "--modes", "workers 2"]) \
        == "/w/benchmarks/executors.py --modes 'workers 2'"
    (study / "lyrics" / "plan.json").write_text(json.dumps({"commands": [
        {"command": "/w/src/studybench/cli.py run lyrics --data songs.csv --seeds 0,1,2", "run_ids": []}]}))
    build_report(study, tmp_path / "out")
    protocol = (tmp_path / "out" / "report.md").read_text().split("## Protocol", 1)[1]
    assert "`studybench run lyrics --data songs.csv --seeds 0,1,2`" in protocol
    assert "cli.py" not in protocol


def test_protocol_names_the_training_precision_of_the_networks(study, tmp_path):
    """`train.precision=auto` is bf16 on one machine and fp32 on another: the protocol says
    which the networks trained in, run by run where they differ (classical models have none)."""
    for i, path in enumerate(sorted((study / "images" / "runs").glob("*/metrics.json"))):
        metrics = json.loads(path.read_text())
        metrics["selection"]["precision"] = "bf16" if i < 3 else "32"
        path.write_text(json.dumps(metrics))
    build_report(study, tmp_path / "out")
    protocol = (tmp_path / "out" / "report.md").read_text().split("## Protocol", 1)[1]
    assert "| training precision of the networks | bf16 autocast (3 runs); fp32 (9 runs) |" in protocol
