"""Averaging seeds: what the probabilities a run has already saved give when mixed (issue 11).

A run folder keeps every model's calibrated probabilities per seed (``predictions/``). This
script trains nothing: for one evaluation it prints the test macro-F1 of

- each model's seeds alone (what the leaderboard averages),
- the mean of a model's probabilities over all its seeds (a seed bag: one model of N trainings),
- the ensemble recomputed from its members' saved probabilities, per seed (a check: it must match
  the ensemble's own row), and with the transformer's seeds bagged.

The mixes are fixed in advance (equal weights), not chosen on test. A bag of N transformer
seeds costs N trainings and N times the scoring time. Each row has a percentile bootstrap
interval over the test comments and its mean difference (Δ) to the transformer alone on the
same resamples, with the share of resamples where it is not ahead (a one-sided paired p).

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
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals and Δ")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))

    from comment_stance.experiments import load_run
    from comment_stance.metrics import macro_f1, resampled_macro_f1

    run = load_run(args.run)
    models = run.models(args.evaluation)

    def probabilities(model: str) -> tuple[list[str], list[str], dict[int, np.ndarray]]:
        table = run.predictions(args.evaluation, model)
        columns = sorted(c for c in table.columns if c.startswith("p_"))
        by_seed = {int(s): g.sort_values("id") for s, g in table.groupby("seed")}
        first = next(iter(by_seed.values()))
        return ([c[2:] for c in columns], first["gold"].tolist(),
                {s: g[columns].to_numpy(float) for s, g in by_seed.items()})

    saved = {m: probabilities(m) for m in (args.svm, args.transformer, args.ensemble) if m in models}
    classes, gold, _ = next(iter(saved.values()))
    rows: list[tuple[str, list[np.ndarray]]] = []  # what, its probabilities per seed (one entry: one model)
    for model, (_, _, seeds) in saved.items():
        rows.append((f"{model} alone", list(seeds.values())))
        if len(seeds) > 1:
            rows.append((f"{model} bag of {len(seeds)} seeds", [np.mean(list(seeds.values()), axis=0)]))
    if args.svm in saved and args.transformer in saved:
        svm, transformer = saved[args.svm][2], saved[args.transformer][2]
        bag = np.mean(list(transformer.values()), axis=0)
        rows.append(("svm + transformer, same seed (the ensemble)", [(svm[s] + transformer[s]) / 2 for s in transformer]))
        rows.append((f"svm + transformer bag of {len(transformer)} seeds", [(svm[s] + bag) / 2 for s in svm]))

    def labels(proba: np.ndarray) -> list[str]:
        return [classes[i] for i in proba.argmax(axis=1)]

    # every row scored on the same bootstrap resamples of the test comments (a row with several
    # seeds scores their mean macro-F1), so that differences between rows are paired
    predicted = [[labels(p) for p in probas] for _, probas in rows]
    resampled = resampled_macro_f1(gold, *predicted, labels=classes, n_resamples=args.resamples, seed=0)
    reference = next((i for i, (what, _) in enumerate(rows) if what == f"{args.transformer} alone"), 0)
    print(f"bench_seed_mix: {args.run}, {args.evaluation}: test macro-F1; 95% CI and Δ against "
          f"'{rows[reference][0]}' over {args.resamples} paired bootstrap resamples")
    print(f"{'what':<50}{'per seed':>20}{'mean':>8}{'95% CI':>17}{'Δ':>8}{'Δ <= 0':>9}")
    for i, (what, _) in enumerate(rows):
        scores = [macro_f1(gold, seed_labels, classes) for seed_labels in predicted[i]]
        low, high = np.quantile(resampled[i], [0.025, 0.975])
        delta = resampled[i] - resampled[reference]
        compared = f"{np.mean(delta):>+8.3f}{np.mean(delta <= 0):>9.3f}" if i != reference else f"{'':>17}"
        print(f"{what:<50}{' '.join(f'{x:.3f}' for x in scores) if len(scores) > 1 else '':>20}"
              f"{np.mean(scores):>8.3f}{f'[{low:.3f}, {high:.3f}]':>17}{compared}")

if __name__ == "__main__":
    main()
