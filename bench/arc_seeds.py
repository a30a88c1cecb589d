"""ARC seeds: the seed mean (and the seed bag) from files that ``bench_arc.py --predictions`` wrote.

Issue 11 asks for seed means. ``bench_arc.py --transformer --seed N --predictions FILE`` keeps
one training's test probabilities; this script trains nothing and prints, for those files,

- each file's test macro-F1 (the argmax of its probabilities),
- the mean ± sample standard deviation over the files (the experiment machinery's convention),
- the macro-F1 of the files' averaged probabilities: a bag of N trainings, one model that costs
  N times the training and the scoring.

Every file must hold the same test comments in the same order with the same gold labels and
the same label columns; otherwise it stops with the file and line that differ.

    python bench/bench_arc.py ../shared/benchmarks/arc --transformer --seed 1 --predictions s1.csv
    python bench/arc_seeds.py s0.csv s1.csv s2.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from comment_stance.metrics import macro_f1

FIX = "give the CSVs that bench_arc.py --predictions wrote"


def read(path: Path) -> tuple[pd.DataFrame, list[str]]:
    if not path.is_file():
        sys.exit(f"error: {path}: no such file; {FIX}")
    try:
        table = pd.read_csv(path, dtype={"id": str, "gold": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        sys.exit(f"error: {path}: not a CSV file ({str(err).splitlines()[0]}); {FIX}")
    labels = [c[2:] for c in table.columns if c.startswith("p_")]
    if "id" not in table.columns or "gold" not in table.columns or not labels:
        sys.exit(f"error: {path}: needs the columns id, gold and p_<label>; "
                 "write it with bench_arc.py --transformer --predictions")
    return table, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", type=Path, help="CSV files of bench_arc.py --predictions")
    args = parser.parse_args()
    tables = [read(path) for path in args.predictions]   # each file read once
    (first, labels), name = tables[0], args.predictions[0]
    gold = first["gold"].tolist()

    def score(proba: np.ndarray) -> float:
        return macro_f1(gold, [labels[i] for i in proba.argmax(axis=1)], labels)

    columns = [f"p_{c}" for c in labels]
    probabilities = []
    for path, (table, these) in zip(args.predictions, tables):
        if these != labels:
            sys.exit(f"error: {path}: label columns {these} differ from {labels} in {name}")
        if len(table) != len(first):
            sys.exit(f"error: {path}: {len(table)} rows, but {name} has {len(first)}; give files of the same test set")
        differ = np.flatnonzero((table["id"].to_numpy() != first["id"].to_numpy())
                                | (table["gold"].to_numpy() != first["gold"].to_numpy()))
        if len(differ):
            row = int(differ[0])
            sys.exit(f"error: {path}: line {row + 2} is {table['id'][row]} ({table['gold'][row]}), "
                     f"but {first['id'][row]} ({first['gold'][row]}) in {name}; give files of the same test set")
        bad = table[columns].apply(pd.to_numeric, errors="coerce").isna().any(axis=1).to_numpy().nonzero()[0]
        if len(bad):
            sys.exit(f"error: {path}: line {int(bad[0]) + 2} has a missing or non-numeric probability; {FIX}")
        probabilities.append(table[columns].to_numpy(dtype=float))
    # every file checked before anything is printed: no partial table
    scores = [score(proba) for proba in probabilities]
    for path, value in zip(args.predictions, scores):
        print(f"{str(path):<48}{value:>8.3f}")
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    print(f"{f'mean ± std over {len(scores)} file(s)':<48}{np.mean(scores):>8.3f} ± {std:.3f}")
    print(f"{f'bag (averaged probabilities of {len(scores)})':<48}{score(np.mean(probabilities, axis=0)):>8.3f}")


if __name__ == "__main__":
    main()
