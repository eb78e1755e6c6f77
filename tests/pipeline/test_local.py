"""The run pipeline on this machine: serial against a pool of worker processes, failures,
a worker killed mid-grid, thread budgets and GPUs handed out, one results.csv for both
studies."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_cifar
from grid import GRID, IMAGES, execution, records, write_corpus

from studybench import registry
from studybench.errors import StudybenchError
from studybench.pipeline.driver import StudyFailed
from studybench.pipeline.executors import SerialExecutor, make_executor
from studybench.pipeline.local import LocalPool
from studybench.studies.images import run_images
from studybench.studies.lyrics import plan_lyrics, run_lyrics


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def serial(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    with SerialExecutor(threads=1) as executor:
        table = run_lyrics(corpus, out=out, executor=executor, **GRID)
    return out, table


def test_two_workers_give_the_serial_records(serial, corpus, tmp_path):
    events = []
    table = run_lyrics(corpus, out=tmp_path, workers=2, threads=1, progress=lambda e, s: events.append(e), **GRID)
    assert records(tmp_path) == records(serial[0])
    pd.testing.assert_frame_equal(table.drop(columns="fit_seconds"), serial[1].drop(columns="fit_seconds"))
    budgets = execution(tmp_path)
    assert {(b["executor"], b["workers"], b["threads"]) for b in budgets} == {("local", 2, 1)}
    assert len({b["pid"] for b in budgets}) == 2  # both workers ran jobs
    assert all(b["pid"] != os.getpid() for b in budgets)
    env = json.loads(next((tmp_path / "runs").iterdir()).joinpath("environment.json").read_text())
    assert env["threads"]["OMP_NUM_THREADS"] == "1" and env["threads"]["torch"] == 1
    assert {e.kind for e in events} >= {"planned", "dispatched", "started", "epoch", "finished", "done"}
    results = pd.read_csv(tmp_path / "results.csv")
    assert results["run_id"].tolist() == sorted(p.name for p in (tmp_path / "runs").iterdir())


def test_serial_threads_are_put_back(serial):
    import torch

    before = torch.get_num_threads()
    with SerialExecutor(threads=1) as executor:
        executor.start()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_failing_job_leaves_the_others_finished(corpus, tmp_path):
    # decision_tree's input is checked when the model is built, inside the worker
    with pytest.raises(StudyFailed) as caught:
        run_lyrics(corpus, models="majority,decision_tree", features="lyrics", seeds="0,1", split="random",
                   overrides={"model.input": "bogus"}, out=tmp_path, workers=2, threads=1)
    failed = caught.value.failed
    assert caught.value.exit_code == 1
    assert sorted(r.split("-")[0] for r in failed) == ["decision_tree.lyrics.tuned.random.s0",
                                                        "decision_tree.lyrics.tuned.random.s1"]
    assert all("model.input=bogus" in error for error in failed.values())
    assert "2 of 4 runs failed" in str(caught.value) and "decision_tree" in str(caught.value)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "runs").iterdir()) == [
        "majority.lyrics.tuned.random.s0", "majority.lyrics.tuned.random.s1"]
    assert caught.value.result["model"].tolist() == ["majority"]  # the table of what finished
    recorded = json.loads((tmp_path / "failures.json").read_text())
    assert set(recorded) == set(failed) and all(v["command"] for v in recorded.values())


def test_a_worker_killed_mid_run_costs_that_run_only(corpus, tmp_path):
    killed = []

    def kill_first_neural_worker(event, status):
        if event.kind == "epoch" and not killed and event.run_id.startswith("embedding_bag"):
            killed.append(event.run_id)
            os.kill(started[event.run_id], signal.SIGKILL)
        if event.kind == "started":
            started[event.run_id] = event.data["pid"]

    started: dict[str, int] = {}
    lost = []
    grid = dict(GRID, overrides={"train.epochs": "40", "train.patience": "40", "model.max_len": "40"})
    run_lyrics(corpus, out=tmp_path, workers=2, threads=1, log=lost.append,
               progress=kill_first_neural_worker, **grid)
    assert killed and any("died mid-run (killed by signal 9)" in line for line in lost)
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(names) == 6 and len({n.split("-")[0] for n in names}) == 6  # every run exactly once
    assert not list((tmp_path / "runs").glob("*.partial"))
    assert killed[0] in names  # tried again and finished
    before = {n: (tmp_path / "runs" / n / "metrics.json").stat().st_mtime_ns for n in names}
    events = []
    run_lyrics(corpus, out=tmp_path, workers=2, threads=1, progress=lambda e, s: events.append(e.kind), **grid)
    assert "dispatched" not in events  # the rerun has nothing left to do
    assert {n: (tmp_path / "runs" / n / "metrics.json").stat().st_mtime_ns for n in names} == before


def test_gpus_are_handed_out_to_local_workers(corpus, tmp_path):
    """Two fake GPUs, two workers: each worker's runs see one device (CUDA_VISIBLE_DEVICES)."""
    with LocalPool(2, 1, gpus=["0", "1"]) as pool:
        run_lyrics(corpus, models="majority", features="lyrics", seeds="0,1,2,3", split="random",
                   out=tmp_path, executor=pool)
    budgets = execution(tmp_path)
    assert {b["gpu"] for b in budgets} == {"0", "1"}
    by_pid = {}
    for b in budgets:
        by_pid.setdefault(b["pid"], set()).add(b["gpu"])
    assert all(len(gpus) == 1 for gpus in by_pid.values())
    for run in (tmp_path / "runs").iterdir():
        env = json.loads((run / "environment.json").read_text())
        assert env["execution"]["gpu"] in ("0", "1")


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 0}, "--workers 0: expected 1 or more"),
    ({"workers": "many"}, "--workers many: expected a whole number"),
    ({"workers": 2, "threads": 64}, "exceeds this machine's"),
    ({"threads": 0}, "--threads 0: expected 1 or more"),
    ({"workers": 3, "ray": "auto"}, "--ray and --workers exclude each other"),
])
def test_executor_settings_are_checked(kwargs, message):
    with pytest.raises(StudybenchError, match=message):
        make_executor(**kwargs)


def test_auto_runs_a_single_run_here(corpus, tmp_path):
    run_lyrics(corpus, models="majority", features="lyrics", seeds="0", split="random", out=tmp_path,
               workers="auto")
    assert execution(tmp_path)[0]["executor"] == "serial"


def test_planning_writes_nothing(corpus, tmp_path):
    plan = plan_lyrics(corpus, models="majority,tfidf_logreg", features="lyrics,lyrics+artist", seeds="0,1",
                       split="random")
    assert len(plan.jobs) == 8 and len(plan.payloads) == 2  # one split per seed, shared by its jobs
    assert all(job.inputs[0] in plan.payloads for job in plan.jobs)
    assert not any(tmp_path.iterdir())
    import pickle

    assert pickle.loads(pickle.dumps(plan.jobs[0])) == plan.jobs[0]  # a job travels as it is


def test_seed_preset_runs_a_family_beyond_the_study_tuned_and_says_so(corpus):
    lines: list[str] = []
    plan = plan_lyrics(corpus, models="majority,nb_logreg", features="lyrics", split="random", preset="seed",
                       log=lines.append)
    presets = {job.model: (job.preset, job.record["preset"], job.run_id.split(".")[2]) for job in plan.jobs}
    assert presets == {"majority": ("seed",) * 3, "nb_logreg": ("tuned",) * 3}
    assert any("nb_logreg is not in the study" in line and "tuned" in line for line in lines)
    tuned = plan_lyrics(corpus, models="nb_logreg", features="lyrics", split="random", preset="tuned")
    assert tuned.jobs[0].run_id == next(j for j in plan.jobs if j.model == "nb_logreg").run_id


def test_lyrics_jobs_carry_their_relative_cost(corpus):
    """The driver starts the largest runs first; a lyrics job's cost is its model's measured
    weight under its preset (seed: cnn_flat_lstm is by far the longest; tuned: its 180 scalar
    steps train faster than cnn_multi_kernel), scaled by its epochs."""
    seed = plan_lyrics(corpus, models="majority,tfidf_logreg,lstm,cnn_flat_lstm", features="lyrics",
                       split="random", preset="seed")
    assert [job.model for job in sorted(seed.jobs, key=lambda job: -job.cost)] == [
        "cnn_flat_lstm", "lstm", "tfidf_logreg", "majority"]
    tuned = plan_lyrics(corpus, models="cnn_flat_lstm,cnn_multi_kernel", features="lyrics", split="random")
    assert max(tuned.jobs, key=lambda job: job.cost).model == "cnn_multi_kernel"
    epochs = registry.get("cnn_multi_kernel").resolve("tuned").train.epochs
    longer = plan_lyrics(corpus, models="cnn_multi_kernel", features="lyrics", split="random",
                         overrides={"model.train.epochs": 2 * epochs})
    assert longer.jobs[0].cost == 2 * max(job.cost for job in tuned.jobs)


def test_both_studies_share_one_out_folder(corpus, tmp_path):
    """A lyrics study then an image study in one --out: results.csv keeps both (it once
    kept only the image rows) and the report builds over both."""
    from studybench.reporting.report import build_report

    run_lyrics(corpus, models="majority", features="lyrics", seeds="0", split="random", out=tmp_path)
    cifar = write_cifar(tmp_path / "data", "cifar10", n_train=12, n_test=4).parent
    run_images(cifar, models="cnn_basic", seeds="0", overrides={**IMAGES, "transfer.arms": "scratch"},
               out=tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    assert sorted(results["study"]) == ["images", "images", "lyrics"]
    page = build_report(tmp_path).read_text()
    assert "Lyrics → genre" in page and "Images: block 1" in page


_ORPHAN_SCRIPT = '''
import multiprocessing, os, sys, time

def child(parent, pidfile):
    from studybench.pipeline.local import exit_with_parent
    if os.environ.get("WATCHDOG_ONLY"):
        sys.platform = "other"  # as off Linux: no death signal, the watchdog thread alone
    exit_with_parent(parent, poll=0.1)
    open(pidfile, "w").write(str(os.getpid()))
    time.sleep(120)  # a job that would run on long after its driver is gone

if __name__ == "__main__":
    process = multiprocessing.get_context("spawn").Process(target=child, args=(os.getpid(), sys.argv[1]))
    process.start()
    time.sleep(120)
'''


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("watchdog_only", [False, True])
def test_a_worker_ends_when_its_driver_is_killed(tmp_path, watchdog_only):
    """A driver killed outright (kill -9) cannot stop its workers: each must end by itself
    instead of training its run on as an orphan that a rerun would race on the same run folder."""
    import subprocess
    import sys
    import time

    script, pidfile = tmp_path / "driver.py", tmp_path / "worker.pid"
    script.write_text(_ORPHAN_SCRIPT)
    env = {**os.environ, **({"WATCHDOG_ONLY": "1"} if watchdog_only else {})}
    driver = subprocess.Popen([sys.executable, str(script), str(pidfile)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(pidfile.read_text())
        assert not _gone(worker)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 10
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _gone(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed driver by 10 s")
