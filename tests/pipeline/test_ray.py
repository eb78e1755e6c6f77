"""The run pipeline on a Ray cluster of two nodes started inside the test (1 CPU each, all
on loopback): the same records as the serial executor for a lyrics grid and an image study
with transfer arms, failures, a worker killed mid-grid, a fake GPU, and a driver whose
--out is nowhere near the workers' working directory."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import ray
from grid import GRID, IMAGES, execution, records, write_corpus

from studybench.pipeline.driver import StudyFailed
from studybench.pipeline.executors import SerialExecutor
from studybench.studies.images import run_images
from studybench.studies.lyrics import run_lyrics


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes on this machine: the head, and a second node with one fake GPU. Everything
    binds to 127.0.0.1 (Ray would otherwise pick the machine's network address) and the
    workers start in a folder of their own, not the driver's --out."""
    from ray.cluster_utils import Cluster

    workdir = tmp_path_factory.mktemp("ray-workers")
    before = os.getcwd()
    os.chdir(workdir)  # the raylets, and so the workers, start here
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1")
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        yield cluster, workdir
    finally:
        os.chdir(before)
        ray.shutdown()
        cluster.shutdown()


def ray_executor(**kwargs):
    from studybench.pipeline.raycluster import RayExecutor

    return RayExecutor("auto", threads=1, gpus_per_run=kwargs.pop("gpus_per_run", 0.0))


def test_lyrics_grid_on_two_nodes_matches_serial(cluster, corpus, tmp_path):
    _, workdir = cluster
    serial_out, ray_out = tmp_path / "serial", tmp_path / "ray"
    with SerialExecutor(threads=1) as executor:
        run_lyrics(corpus, out=serial_out, executor=executor, **GRID)
    with ray_executor() as executor:
        run_lyrics(corpus, out=ray_out, executor=executor, **GRID)
    assert records(ray_out) == records(serial_out)
    budgets = execution(ray_out)
    assert {(b["executor"], b["threads"]) for b in budgets} == {("ray", 1)}
    assert all(b["pid"] != os.getpid() for b in budgets)
    assert not any(workdir.iterdir())  # workers wrote nothing where they run


def test_image_study_with_transfer_arms_matches_serial(cluster, tmp_path):
    from conftest import write_cifar

    cifar = write_cifar(tmp_path / "data", "cifar10", n_train=12, n_test=4).parent
    args = dict(models="cnn_basic", seeds="0", overrides=IMAGES)
    with SerialExecutor(threads=1) as executor:
        serial = run_images(cifar, out=tmp_path / "serial", executor=executor, **args)
    with ray_executor() as executor:
        distributed = run_images(cifar, out=tmp_path / "ray", executor=executor, **args)
    assert records(tmp_path / "ray") == records(tmp_path / "serial")
    assert len(records(tmp_path / "ray")) == 2 + 3  # cnn_basic, the autoencoder, three arms
    for a, b in zip(serial, distributed):
        assert a.drop(columns="fit_seconds").equals(b.drop(columns="fit_seconds"))


def test_a_failing_job_and_a_killed_worker(cluster, corpus, tmp_path):
    """One job fails (its model cannot be built): the others finish and the grid raises. A
    worker SIGKILLed mid-run is tried again; the rerun then does nothing new."""
    with ray_executor() as executor, pytest.raises(StudyFailed) as caught:
        run_lyrics(corpus, models="majority,decision_tree", features="lyrics", seeds="0", split="random",
                   overrides={"model.input": "bogus"}, out=tmp_path / "fail", executor=executor)
    assert [r.split("-")[0] for r in caught.value.failed] == ["decision_tree.lyrics.tuned.random.s0"]
    assert [p.name.split("-")[0] for p in (tmp_path / "fail" / "runs").iterdir()] == ["majority.lyrics.tuned.random.s0"]

    started, killed, said = {}, [], []

    def kill_once(event, status):
        if event.kind == "started":
            started[event.run_id] = event.data["pid"]
        elif event.kind == "epoch" and not killed and event.run_id in started:
            killed.append(event.run_id)
            os.kill(started[event.run_id], signal.SIGKILL)

    grid = dict(GRID, overrides={"train.epochs": "40", "train.patience": "40", "model.max_len": "40"})
    out = tmp_path / "kill"
    with ray_executor() as executor:
        run_lyrics(corpus, out=out, executor=executor, progress=kill_once, log=said.append, **grid)
    assert killed and any(killed[0] in line and "trying it again" in line for line in said)
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert len(names) == 6 and len({n.split("-")[0] for n in names}) == 6 and killed[0] in names
    assert not list((out / "runs").glob("*.partial"))
    kinds = []
    with ray_executor() as executor:
        run_lyrics(corpus, out=out, executor=executor, progress=lambda e, s: kinds.append(e.kind), **grid)
    assert "dispatched" not in kinds


def test_runs_ask_for_a_gpu_share(cluster, corpus, tmp_path):
    """Half a (fake) GPU per run: Ray puts the runs on the node that has one and tells each
    which device it got; the run records it."""
    with ray_executor(gpus_per_run=0.5) as executor:
        run_lyrics(corpus, models="majority", features="lyrics", seeds="0,1", split="random", out=tmp_path,
                   executor=executor)
    budgets = execution(tmp_path)
    assert len(budgets) == 2 and {b["gpu"] for b in budgets} == {"0"}


def test_the_driver_alone_writes_out(cluster, corpus, tmp_path):
    out = tmp_path / "out"
    with ray_executor() as executor:
        run_lyrics(corpus, models="majority", features="lyrics", seeds="0", split="random", out=out,
                   executor=executor)
    written = {p.relative_to(out).parts[0] for p in out.rglob("*")}
    assert written <= {"runs", "results.csv", "plan.json", ".studybench.lock"}
    run = next((out / "runs").iterdir())
    assert json.loads((run / "environment.json").read_text())["execution"]["host"]
    assert Path(json.loads((run / "config.json").read_text())["data"]["path"]) == corpus
