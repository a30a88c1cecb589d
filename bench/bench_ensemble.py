"""Accuracy of averaging calibrated probabilities (the ``ensemble`` preset, issue 11).

Trains tfidf-svm, tfidf-logreg and the transformer once on a split's train file (as
``bench/bench_presets.py`` does; the transformer with experiments/baseline.toml's settings) and
prints dev and test macro-F1 of each model alone and of weighted means of their probabilities:
SVM + transformer and logistic regression + transformer at transformer weights 0.3/0.5/0.7, and
all three with equal weights. Dev is printed so that a weight can be chosen without looking at
test. About 4 minutes per split on an idle 2-core CPU (the transformer's training).

    python bench/bench_ensemble.py --data data/processed/unseen-article
    python bench/bench_ensemble.py --data data/processed/random --seed 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRANSFORMER = {"epochs": 3, "max_length": 128, "batch_size": 16, "lr": 1e-4, "patience": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / "data" / "processed" / "unseen-article"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from comment_stance import train
    from comment_stance.data import load_dataset
    from comment_stance.metrics import macro_f1

    dataset = load_dataset(args.data)
    one, five, _ = os.getloadavg()
    print(f"bench_ensemble: {args.data}, seed {args.seed}  [load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]")
    params = {"tfidf-svm": {"seed": args.seed}, "tfidf-logreg": {"seed": args.seed},
              "transformer": dict(TRANSFORMER, seed=args.seed)}
    proba, classes = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in params.items():
            model = train(dataset, name, Path(tmp) / name, params=settings, evaluate_on=()).model
            classes = [str(c) for c in model.classes_]
            proba[name] = {split: model.predict_proba(dataset.split(split)) for split in ("dev", "test")}

    def score(split: str, mix: dict[str, float]) -> float:
        total = sum(weight * proba[name][split] for name, weight in mix.items())
        truth = dataset.split(split)["label"].tolist()
        return macro_f1(truth, [classes[i] for i in total.argmax(axis=1)], classes)

    mixes = [{name: 1.0} for name in params]
    for tfidf in ("tfidf-svm", "tfidf-logreg"):
        mixes += [{tfidf: 1 - w, "transformer": w} for w in (0.3, 0.5, 0.7)]
    mixes.append({name: 1 / 3 for name in params})
    print(f"{'models (weights)':<52}{'dev':>8}{'test':>8}")
    for mix in mixes:
        label = " + ".join(f"{name} {weight:.2f}" if len(mix) > 1 else name for name, weight in mix.items())
        print(f"{label:<52}{score('dev', mix):>8.3f}{score('test', mix):>8.3f}")


if __name__ == "__main__":
    main()
