"""Replay finished runs' per-epoch validation histories under another epoch budget.

    python benchmarks/epoch_replay.py RUNS [RUNS ...] --epochs 4 --patience 2 [--models lstm,lstm_stacked]
        [--monitor val_macro_f1]

For every run folder under RUNS (``runs/*/history.csv``) it says which epoch the run would keep
and when it would stop with at most ``--epochs`` epochs, stopping after ``--patience`` epochs
without a better monitor value, against the same run under its own patience and no cap. Exact for
the plateau schedule: the first N epochs of a run do not depend on when it would stop (a one-cycle
schedule depends on the budget, so its runs cannot be replayed). Budgets are chosen on validation
only; the test score of a kept epoch is what the run had at that epoch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def kept(values: list[float], epochs: int, patience: int) -> tuple[int, int]:
    """(kept epoch, epochs run) of a run with these per-epoch values (higher is better)."""
    best, best_epoch, epoch = float("-inf"), 0, 0
    for epoch, value in enumerate(values[:epochs], 1):
        if value > best:
            best, best_epoch = value, epoch
        if epoch - best_epoch >= patience:
            break
    return best_epoch, epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--patience", type=int, required=True)
    parser.add_argument("--models", default=None, help="comma-separated (default: every run with a history)")
    parser.add_argument("--monitor", default="val_macro_f1")
    args = parser.parse_args()
    models = set(args.models.split(",")) if args.models else None
    cap = f"cap {args.epochs}"
    rows = []
    for root in args.runs:
        for history in sorted(root.glob("runs/*/history.csv")):
            meta = json.loads((history.parent / "metrics.json").read_text())
            if models and meta["model"] not in models:
                continue
            values = pd.read_csv(history)[args.monitor].tolist()
            now, new = kept(values, 10**6, args.patience), kept(values, args.epochs, args.patience)
            rows.append({"run": history.parent.name.rsplit("-", 1)[0], "epochs run": now[1], "kept epoch": now[0],
                         args.monitor: values[now[0] - 1], f"epochs run ({cap})": new[1], f"kept epoch ({cap})": new[0],
                         f"{args.monitor} ({cap})": values[new[0] - 1],
                         "change (points)": 100 * (values[new[0] - 1] - values[now[0] - 1])})
    if not rows:
        raise SystemExit("no run histories found")
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    moved = int((table["kept epoch"] != table[f"kept epoch ({cap})"]).sum())
    print(f"\n{len(table)} runs: {moved} keep another epoch (mean change {table['change (points)'].mean():+.2f} points); "
          f"{table['epochs run'].sum()} epochs -> {table[f'epochs run ({cap})'].sum()}")


if __name__ == "__main__":
    main()
