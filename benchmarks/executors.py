"""One study under several executors, one after another on an otherwise idle machine: wall
time of each, the ratio to the first, and the sum of the runs' own fit times (what perfect
parallelism would divide by the cores).

    python benchmarks/executors.py --out /tmp/bench-lyrics -- \\
        run lyrics --data ../shared/data/lyrics/tcc_ceds_music.csv --split artist --seeds 0
    python benchmarks/executors.py --modes "workers 1" "workers 2" --out /tmp/bench-images -- \\
        run images --data ../shared/data/cifar10-jpeg-q75 --seeds 0

Every mode writes into a fresh folder of its own (``OUT/<mode>``), so no run is reused; the
records can be compared afterwards (metrics at equal thread counts are identical).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from studybench.runfolder import finished_runs

MODES = {"workers 1": ["--workers", "1"], "workers 2": ["--workers", "2"], "ray local": ["--ray", "local"]}


def fit_seconds(out: Path) -> tuple[float, int, set[int]]:
    """Sum of the runs' fit seconds, the number of runs, and the thread counts they used."""
    runs = finished_runs(out)
    return (sum(run.metrics["fit_seconds"] for run in runs), len(runs),
            {run.environment["threads"]["torch"] for run in runs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Parent folder; one subfolder per mode.")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then studybench's arguments (no --out)")
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"]
    studybench = [str(Path(sys.executable).with_name("studybench"))]
    rows = []
    for mode in args.modes:
        out = args.out / mode.replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)
        argv = studybench + command + MODES[mode] + ["--out", str(out)]
        print(f"$ {shlex.join(argv)}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"{mode} failed ({result.returncode}): {result.stderr[-2000:]}")
        fit, count, threads = fit_seconds(out)
        rows.append((mode, wall, fit, count, threads))
        print(f"{mode}: {wall:.0f} s wall, {count} runs, {fit:.0f} s of fit time, threads {sorted(threads)}",
              flush=True)
    base = rows[0][1]
    print("| executor | runs | threads per run | wall s | wall ratio | sum of fit s | fit s / 2 cores |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, wall, fit, count, threads in rows:
        print(f"| {mode} | {count} | {','.join(map(str, sorted(threads)))} | {wall:,.0f} | {base / wall:.2f} | "
              f"{fit:,.0f} | {fit / 2:,.0f} |")


if __name__ == "__main__":
    main()
