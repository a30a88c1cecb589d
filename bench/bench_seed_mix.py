"""Averaging seeds: what the probabilities a run has already saved give when mixed (issue 11).

A run folder keeps every model's calibrated probabilities per seed (``predictions/``). This
script trains nothing: for one evaluation it prints the test macro-F1 of

- each model's seeds alone (what the leaderboard averages),
- the mean of a model's probabilities over all its seeds (a seed bag: one model of N trainings),
- the ensemble recomputed from its members' saved probabilities, per seed (a check: it must match
  the ensemble's own row), and with the transformer's seeds bagged.

The mixes are fixed in advance (equal weights), not chosen on test. A bag of N transformer
seeds costs N trainings and N times the scoring time.

RUN is a run folder (experiments/results/ keeps only the reports, not the predictions):

    stance experiment run experiments/full-study.toml --out RUN
    python bench/bench_seed_mix.py RUN --evaluation unseen-article
    # a run of mpnet.toml (docs/transformer.md):
    python bench/bench_seed_mix.py RUN --evaluation random --transformer transformer-mpnet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder of `stance experiment run`")
    parser.add_argument("--evaluation", required=True)
    parser.add_argument("--svm", default="tfidf-svm", help="the run's TF-IDF SVM model name")
    parser.add_argument("--transformer", default="transformer", help="the run's transformer model name")
    parser.add_argument("--ensemble", default="ensemble", help="the run's ensemble model name (may be absent)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))

    from comment_stance.experiments import load_run
    from comment_stance.metrics import macro_f1

    run = load_run(args.run)
    models = run.models(args.evaluation)

    def probabilities(model: str) -> tuple[list[str], list[str], dict[int, np.ndarray]]:
        table = run.predictions(args.evaluation, model)
        columns = sorted(c for c in table.columns if c.startswith("p_"))
        by_seed = {int(s): g.sort_values("id") for s, g in table.groupby("seed")}
        first = next(iter(by_seed.values()))
        return ([c[2:] for c in columns], first["gold"].tolist(),
                {s: g[columns].to_numpy(float) for s, g in by_seed.items()})

    def f1(gold: list[str], classes: list[str], proba: np.ndarray) -> float:
        return macro_f1(gold, [classes[i] for i in proba.argmax(axis=1)], classes)

    print(f"bench_seed_mix: {args.run}, {args.evaluation}: test macro-F1")
    print(f"{'what':<50}{'per seed':>26}{'mean':>8}")
    saved = {}
    for model in (args.svm, args.transformer, args.ensemble):
        if model not in models:
            continue
        classes, gold, seeds = saved[model] = probabilities(model)
        scores = [f1(gold, classes, p) for p in seeds.values()]
        print(f"{model + ' alone':<50}{' '.join(f'{s:.3f}' for s in scores):>26}{np.mean(scores):>8.3f}")
        if len(seeds) > 1:
            bag = f1(gold, classes, np.mean(list(seeds.values()), axis=0))
            print(f"{model + f' bag of {len(seeds)} seeds':<50}{'':>26}{bag:>8.3f}")
    if args.svm in saved and args.transformer in saved:
        classes, gold, svm = saved[args.svm]
        _, _, transformer = saved[args.transformer]
        mixed = [f1(gold, classes, (svm[s] + transformer[s]) / 2) for s in transformer]
        print(f"{'svm + transformer, same seed (the ensemble)':<50}{' '.join(f'{s:.3f}' for s in mixed):>26}"
              f"{np.mean(mixed):>8.3f}")
        bag = np.mean(list(transformer.values()), axis=0)
        bagged = [f1(gold, classes, (svm[s] + bag) / 2) for s in svm]
        print(f"{'svm + transformer bag of ' + str(len(transformer)) + ' seeds':<50}"
              f"{' '.join(f'{s:.3f}' for s in bagged):>26}{np.mean(bagged):>8.3f}")


if __name__ == "__main__":
    main()
