"""Each preset's accuracy and scoring speed side by side, so that a user can choose (issue 11).

Every preset is trained here on the ``train`` file of ``--data`` and scored on its ``test`` file
(so no model sees its test comments), then the same test comments are scored again, timed, in
this process. The peer is bare scikit-learn (``TfidfVectorizer`` + ``LogisticRegression``, fitted
on the same training texts) scoring the same comments in the same run: speed is printed as a
ratio against it, because these machines are noisy and ratios are what we compare. The load
average is printed with every row.

Examples::

    python bench/bench_presets.py --presets majority,tfidf-logreg,tfidf-svm                    # a minute
    python bench/bench_presets.py --data data/processed/unseen-article                          # with the transformer
    python bench/bench_presets.py --presets transformer --base-model /path/to/hf-folder --label mpnet --transformer-param lr=4e-5

Transformer presets use ``--transformer-param`` settings (default: experiments/baseline.toml's),
and take minutes to train on 2 cores. The ensemble's transformer member gets the same settings
(``--base-model`` included), so it takes the SVM and transformer trained just before it (as
experiments do); its "train s" is their sum. No number
is asserted here; tests never time anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_TRANSFORMER = {"epochs": 3, "max_length": 128, "batch_size": 16, "lr": 1e-4, "patience": 2}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs"


def best_rate(fn, n: int, repeats: int) -> float:
    """Comments per second of the fastest of ``repeats`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n / best


def peer(train, test, repeats: int) -> float:
    """Bare scikit-learn: word TF-IDF + logistic regression on the comment texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    pipeline.fit(train["text"].tolist(), train["label"].tolist())
    texts = test["text"].tolist()
    return best_rate(lambda: pipeline.predict_proba(texts), len(texts), repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / "data" / "processed" / "unseen-article"),
                        help="dataset folder with train and test files")
    parser.add_argument("--presets", default="majority,tfidf-logreg,tfidf-svm,transformer,ensemble")
    parser.add_argument("--base-model", default=None, help="a local Hugging Face folder for the transformer preset")
    parser.add_argument("--label", default=None, help="name shown for the transformer row (e.g. the backbone)")
    parser.add_argument("--transformer-param", action="append", default=[], metavar="KEY=VALUE",
                        help="transformer setting (repeatable); default: experiments/baseline.toml's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed scoring rounds per model (best is kept)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from comment_stance.data import load_dataset
    from comment_stance.experiments.runner import FittedModels
    from comment_stance.metrics import macro_f1
    from comment_stance.cli._util import parse_params

    dataset = load_dataset(args.data)
    test = dataset.test
    labels = sorted(set(dataset.train["label"]))
    print(f"bench_presets: {args.data}: {len(dataset.train)} training, {len(test)} test comments  [{load()}]")
    reference = peer(dataset.train, test, args.repeats)
    print(f"peer: bare scikit-learn TF-IDF + LogisticRegression scores {reference:,.0f} comments/s  [{load()}]")
    print(f"{'preset':<28}{'macro-F1':>10}{'train s':>9}{'comments/s':>12}{'x peer':>8}  load")
    transformer_params = {**BASELINE_TRANSFORMER, "seed": args.seed, **parse_params(args.transformer_param)}
    if args.base_model:
        transformer_params["base_model"] = args.base_model
    fitted = FittedModels()  # an ensemble takes the members trained before it, as in experiments
    with tempfile.TemporaryDirectory() as tmp:
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            params = {} if preset == "majority" else {"seed": args.seed}
            if preset == "transformer":
                params = transformer_params
            elif preset == "ensemble":  # its transformer member has the transformer row's settings (and is reused)
                params = {"seed": args.seed,
                          "member_params": {"transformer": {k: v for k, v in transformer_params.items() if k != "seed"}}}
            started = time.perf_counter()
            result, member_s, reused = fitted.fit("test", dataset, preset, params, Path(tmp) / preset, progress=False)
            seconds = time.perf_counter() - started + member_s - result.time_s  # reused members' training counts
            model = result.model
            predicted = model.predict(test)
            score = macro_f1(test["label"].tolist(), predicted.tolist(), labels)
            rate = best_rate(lambda: model.predict_proba(test), len(test), args.repeats)
            name = args.label if preset == "transformer" and args.label else preset
            note = f"  (reused {reused} trained member(s))" if reused else ""
            print(f"{name:<28}{score:>10.3f}{seconds:>9.0f}{rate:>12,.0f}{rate / reference:>8.2f}  {load()}{note}")


if __name__ == "__main__":
    main()
