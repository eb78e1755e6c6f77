"""Wall time of a lyrics grid on a cluster, projected from measured one-thread run times.

    python benchmarks/cluster_estimate.py --runs /tmp/bench-lyrics/workers-2 --readme README.md \\
        --scale 12.5 --seeds 3 --nodes 8 --cores 8

Each run's cost is its measured one-thread ``fit_seconds`` (from finished run folders that ran
with one thread; where a model, feature set and preset is missing there, the ``fit s`` column of
the README's lyrics results table, itself the mean of three one-thread seeds) times ``--scale``
(the ratio of songs: training an epoch is linear in the songs, the epochs are the preset's).
The grid (every run × ``--seeds``) is then placed the way the driver places it, largest run
first onto the next free slot, on ``nodes × cores`` one-thread slots. Printed: the work in
core-hours, the ideal wall time (work / slots), the placed wall time and the longest single
run, which no number of machines shortens.
"""

from __future__ import annotations

import argparse
import heapq
import re
from pathlib import Path

from studybench.runfolder import finished_runs


def measured(folders: list[Path]) -> dict[tuple[str, str, str], list[float]]:
    """(model, features, preset) -> one-thread fit seconds of the finished runs in ``folders``."""
    times: dict[tuple[str, str, str], list[float]] = {}
    for folder in folders:
        for run in finished_runs(folder):
            if run.environment.get("threads", {}).get("torch") != 1:
                continue
            key = (run.metrics["model"], run.metrics["features"], run.metrics["preset"])
            times.setdefault(key, []).append(run.metrics["fit_seconds"])
    return times


def from_readme(readme: Path) -> dict[tuple[str, str, str], float]:
    """(model, features, preset) -> ``fit s`` of the README's first lyrics results table."""
    text = readme.read_text()
    section = text[text.index("### Lyrics → genre"):]
    rows: dict[tuple[str, str, str], float] = {}
    header = None
    for line in section.splitlines()[1:]:
        if line.startswith("###"):
            break
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if re.fullmatch(r"-+", cells[0]):
            continue
        row = dict(zip(header, cells))
        rows[(row["model"], row["features"], row["preset"])] = float(row["fit s"].replace(",", ""))
    return rows


def place(costs: list[float], slots: int) -> float:
    """Makespan of the largest-first placement of ``costs`` onto ``slots`` equal slots."""
    free = [0.0] * slots
    for cost in sorted(costs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + cost)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="finished study folders")
    parser.add_argument("--readme", type=Path, help="README whose lyrics table fills the runs missing")
    parser.add_argument("--presets", nargs="+", default=["tuned", "seed"])
    parser.add_argument("--scale", type=float, default=12.5, help="songs of the target data / songs measured")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--cores", type=int, default=8, help="cores per node (one one-thread run each)")
    args = parser.parse_args()

    runs = {key: sum(v) / len(v) for key, v in measured(args.runs).items()}
    source = {key: "measured" for key in runs}
    if args.readme:
        for key, seconds in from_readme(args.readme).items():
            if key not in runs:
                runs[key], source[key] = seconds, "README"
    grid = {key: t for key, t in runs.items() if key[2] in args.presets}
    costs = [t * args.scale for t in grid.values() for _ in range(args.seeds)]
    slots = args.nodes * args.cores
    work = sum(costs)
    longest = max(costs)
    placed = place(costs, slots)
    print("| model | features | preset | 1-thread fit s (measured size) | source | projected s |")
    print("|---|---|---|---:|---|---:|")
    for key, t in sorted(grid.items(), key=lambda kv: -kv[1]):
        print(f"| {' | '.join(key)} | {t:,.1f} | {source[key]} | {t * args.scale:,.0f} |")
    print()
    print(f"runs: {len(costs)} ({len(grid)} per seed × {args.seeds} seeds), scale ×{args.scale}")
    print(f"work: {work / 3600:,.1f} core-hours at one thread per run")
    print(f"{args.nodes} nodes × {args.cores} cores = {slots} slots: ideal {work / slots / 3600:.2f} h, "
          f"placed largest first {placed / 3600:.2f} h, longest single run {longest / 3600:.2f} h")
    print(f"one node of {args.cores} cores: placed {place(costs, args.cores) / 3600:.1f} h")


if __name__ == "__main__":
    main()
