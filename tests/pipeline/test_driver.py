"""The driver alone, with a scripted executor (no model is trained): order, dependencies,
failures, workers lost, and what is written where."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studybench.errors import StudybenchError
from studybench.pipeline.driver import StudyFailed, execute_plan
from studybench.pipeline.executors import Executor
from studybench.pipeline.jobs import Event, Job, Plan
from studybench.runfolder import metrics_record


def job(name: str, cost: float = 1.0, sources: dict | None = None, inputs=("data",)) -> Job:
    return Job(name, "lyrics", "unused:unused", name, "lyrics", "tuned", 0, {"study": "lyrics"}, None,
               inputs=inputs, sources=sources or {}, cost=cost)


def files(run_id: str) -> dict[str, bytes]:
    metrics = metrics_record(run_id=run_id, study="lyrics", model=run_id, preset="tuned", seed=0,
                             features="lyrics", split="random", task="classification",
                             sizes={"train": 1, "val": 1, "test": 1}, test={"accuracy": 1.0, "macro_f1": 1.0},
                             fit_seconds=0.0, predict_seconds=0.0)
    return {"metrics.json": json.dumps(metrics).encode(),
            "config.json": json.dumps({"study": "lyrics", "data": {"path": "x.csv"}}).encode()}


class Scripted(Executor):
    """Runs nothing: answers each job as ``script`` says (finished by default), in turn."""

    name = "scripted"

    def __init__(self, slots: int = 1, script: dict | None = None):
        self.slots, self.script, self.submitted, self.queue = slots, dict(script or {}), [], []

    def submit(self, job, payloads, sources, checkpoint) -> None:
        assert set(job.inputs) <= set(payloads)
        self.submitted.append((job.run_id, sorted(sources)))
        self.queue.append(job)

    def wait(self, deliver, timeout: float = 0.5) -> None:
        job = self.queue.pop(0)
        outcomes = self.script.get(job.run_id, ["finished"])
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if outcome == "finished":
            deliver(Event("finished", job.run_id, files(job.run_id)))
        else:
            deliver(Event(outcome, job.run_id, {"error": f"{outcome} on purpose", "traceback": None}))


def plan(*jobs: Job, prepared=None) -> Plan:
    made = prepared if prepared is not None else []
    return Plan("lyrics", list(jobs), {"data": lambda: made.append(1) or "the data"})


def test_sources_first_then_the_largest(tmp_path):
    executor = Scripted()
    jobs = [job("small", 1), job("large", 5), job("arm", 9, sources={"cnn": "base"}), job("base", 2)]
    execute_plan(plan(*jobs), tmp_path, executor)
    assert [name for name, _ in executor.submitted] == ["base", "arm", "large", "small"]
    assert dict(executor.submitted)["arm"] == ["cnn"]  # the source's files travel with the job
    assert sorted(pd.read_csv(tmp_path / "results.csv")["run_id"]) == ["arm", "base", "large", "small"]


def test_payloads_are_made_once_and_only_when_runs_are_left(tmp_path):
    made = []
    execute_plan(plan(job("a"), job("b"), prepared=made), tmp_path, Scripted())
    assert made == [1]
    execute_plan(plan(job("a"), job("b"), prepared=made), tmp_path, Scripted())
    assert made == [1]  # everything finished: nothing prepared, nothing submitted


def test_a_failed_source_fails_its_dependents_and_the_rest_goes_on(tmp_path):
    executor = Scripted(script={"base": ["failed"]})
    jobs = [job("base"), job("arm", sources={"cnn": "base"}), job("other")]
    with pytest.raises(StudyFailed) as caught:
        execute_plan(plan(*jobs), tmp_path, executor)
    assert caught.value.failed == {"base": "failed on purpose", "arm": "its source run base failed"}
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["other"]
    recorded = json.loads((tmp_path / "failures.json").read_text())
    assert set(recorded) == {"base", "arm"}
    execute_plan(plan(*jobs), tmp_path, Scripted())  # the rerun completes the grid ...
    assert json.loads((tmp_path / "failures.json").read_text()) == {}  # ... and forgets the failures


def test_a_lost_run_is_tried_again_once(tmp_path):
    said = []
    executor = Scripted(script={"a": ["lost", "finished"]})
    execute_plan(plan(job("a")), tmp_path, executor, log=said.append)
    assert [name for name, _ in executor.submitted] == ["a", "a"] and (tmp_path / "runs" / "a").is_dir()
    assert any("lost on purpose; trying it again" in line for line in said)
    with pytest.raises(StudyFailed, match="lost on purpose; rerun the same command"):
        execute_plan(plan(job("b")), tmp_path, Scripted(script={"b": ["lost"]}))


def test_a_run_that_arrives_twice_is_written_once(tmp_path):
    class Twice(Scripted):
        def wait(self, deliver, timeout=0.5):
            job = self.queue.pop(0)
            (tmp_path / "runs" / job.run_id).mkdir(parents=True)  # another command finished it meanwhile
            (tmp_path / "runs" / job.run_id / "marker").write_text("first")
            deliver(Event("finished", job.run_id, files(job.run_id)))

    execute_plan(plan(job("a")), tmp_path, Twice())
    assert [p.name for p in (tmp_path / "runs" / "a").iterdir()] == ["marker"]


def test_out_that_is_a_file_is_an_input_error(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(StudybenchError, match="not a folder"):
        execute_plan(plan(job("a")), tmp_path / "out", Scripted())
