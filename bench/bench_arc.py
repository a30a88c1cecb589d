"""Do our defaults hold up on real comments? comment-stance against bare scikit-learn on ARC.

ARC (Hanselowski et al., 2018, COLING; comments from Habernal et al., 2018, NAACL): reader
comments on NYT "Room for Debate" pieces, stance toward a claim (agree / disagree / discuss).
The data stays outside the project; pass its folder (train.jsonl, test.jsonl):

    python bench/bench_arc.py ../shared/benchmarks/arc
    python bench/bench_arc.py ../shared/benchmarks/arc --ensemble   # also the ensemble preset (about 25 min)
    python bench/bench_arc.py ../shared/benchmarks/arc --transformer --transformer-param max_length=256


Each line trains our model and the bare scikit-learn pipeline it is compared with, on the same
split in the same process, and prints both test macro-F1 scores and their difference. Bare
pipelines follow the benchmark's reference recipe: TF-IDF word 1-2 + char 2-5 n-grams,
LogisticRegression or LinearSVC, default settings, the claim optionally prepended.

``--ensemble`` also trains the ``ensemble`` preset as shipped (the TF-IDF SVM and the transformer
at its preset settings: 3 epochs, max length 128, claim and comment as a pair) and prints the test
macro-F1 of its transformer member, of its SVM member and of their mean, against the benchmark's
reference for a plain all-MiniLM-L6-v2 pair fine-tune (0.585, max length 192, from its README;
not rerun here). ARC has no dev split, so the preset's equal weights are used as they are.

``--transformer`` trains the transformer preset alone, with ``--transformer-param KEY=VALUE``
settings (repeatable) over the preset's defaults and ``--base-model`` for another local backbone:
ARC's comments are longer than ours (with the claim, 45% of its test pairs pass 128 tokens, 0.6%
pass 256), so ``max_length`` is the first setting to try there. ``--predictions CSV`` keeps its
test probabilities, so that mixes and error analyses need no second training.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def bare_pipeline(classifier: str):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.svm import LinearSVC

    features = FeatureUnion([("word", TfidfVectorizer(ngram_range=(1, 2))),
                             ("char", TfidfVectorizer(analyzer="char", ngram_range=(2, 5)))])
    clf = LogisticRegression(max_iter=2000) if classifier == "logreg" else LinearSVC()
    return Pipeline([("features", features), ("clf", clf)])


#: the benchmark README's figure for a plain MiniLM pair fine-tune (claim + comment, max length 192)
REFERENCE_FINE_TUNE = 0.585


def main() -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="../shared/benchmarks/arc")
    parser.add_argument("--ensemble", action="store_true", help="also train the ensemble preset (slow)")
    parser.add_argument("--transformer", action="store_true", help="also train the transformer preset alone")
    parser.add_argument("--transformer-param", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of --transformer (repeatable), e.g. max_length=256")
    parser.add_argument("--base-model", default=None, help="a local Hugging Face folder for --transformer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predictions", type=Path, default=None, metavar="CSV",
                        help="with --transformer: write its test probabilities (id, gold label, p_<label>) "
                             "to this new file, for mixing or error analysis without retraining")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(args.folder)
    if args.predictions is not None and (args.predictions.exists() or not args.transformer):
        sys.exit(f"--predictions {args.predictions}: " + ("exists; give a new file name" if args.transformer
                                                          else "needs --transformer"))
    if not (folder / "train.jsonl").exists():
        print(f"skipped: no ARC data at {folder} (pass its folder as the first argument)")
        return
    from comment_stance.data import load_dataset
    from comment_stance.metrics import macro_f1
    from comment_stance.models import make_model
    from comment_stance.cli._util import parse_params

    ds = load_dataset(folder)
    train, test = ds.train, ds.split("test")
    gold = test["label"].tolist()
    print(f"ARC: train {len(train)}, test {len(test)}; test macro-F1")
    print(f"{'setting':<34}{'comment-stance':>15}{'bare sklearn':>14}{'diff':>8}")
    settings = [
        ("majority", "majority", {}, None, False),
        ("logreg, comment only", "tfidf-logreg", {"use_target": False}, "logreg", False),
        ("logreg, claim prepended", "tfidf-logreg", {}, "logreg", True),
        ("svm, claim prepended", "tfidf-svm", {}, "svm", True),
    ]
    fitted = {}
    for name, preset, params, classifier, prepend in settings:
        start = time.perf_counter()
        fitted[name] = make_model(preset, **params).fit(train, train["label"])
        ours = macro_f1(gold, fitted[name].predict(test).tolist())
        ours_s = time.perf_counter() - start
        if classifier is None:
            top = train["label"].value_counts().idxmax()
            bare = macro_f1(gold, [top] * len(gold))
        else:
            join = (lambda f: (f["target"] + " || " + f["text"]).tolist()) if prepend else (lambda f: f["text"].tolist())
            bare = macro_f1(gold, bare_pipeline(classifier).fit(join(train), train["label"]).predict(join(test)).tolist())
        print(f"{name:<34}{ours:>15.3f}{bare:>14.3f}{ours - bare:>+8.3f}   ({ours_s:.0f} s ours)", flush=True)
    if args.ensemble:
        one, five, _ = os.getloadavg()
        start = time.perf_counter()
        model = make_model("ensemble", seed=args.seed).fit(train, train["label"], progress=True)
        train_s = time.perf_counter() - start
        classes = [str(c) for c in model.classes_]
        print(f"\nensemble preset, seed {args.seed}: trained in {train_s / 60:.1f} min "
              f"[load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]; test macro-F1")
        probabilities = {name: member.predict_proba(test) for name, member in zip(model.members, model.members_)}
        probabilities["ensemble (mean)"] = model.predict_proba(test)
        for name, proba in probabilities.items():
            predicted = [classes[i] for i in proba.argmax(axis=1)]
            print(f"{name:<34}{macro_f1(gold, predicted, classes):>15.3f}", flush=True)
        print(f"{'reference: plain MiniLM fine-tune':<34}{REFERENCE_FINE_TUNE:>15.3f}   (benchmarks README, max length 192)")
    if args.transformer:
        params = {"seed": args.seed, **parse_params(args.transformer_param)}
        if args.base_model:
            params["base_model"] = args.base_model
        one, five, _ = os.getloadavg()
        start = time.perf_counter()
        # an hour on 2 CPUs: show a progress bar per epoch on stderr so a long run does not look hung
        model = make_model("transformer", **params).fit(train, train["label"], progress=True)
        train_s = time.perf_counter() - start
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"\ntransformer preset ({shown}): trained in {train_s / 60:.1f} min "
              f"[load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]")
        start = time.perf_counter()
        proba = model.predict_proba(test)
        score_s = time.perf_counter() - start
        classes = [str(c) for c in model.classes_]
        score = macro_f1(gold, [classes[i] for i in proba.argmax(axis=1)], classes)
        print(f"{'transformer':<34}{score:>15.3f}   ({len(test) / score_s:.0f} comments/s scored)", flush=True)
        if args.predictions is not None:
            import pandas as pd

            table = pd.DataFrame({"id": test["id"].tolist(), "gold": gold,
                                  **{f"p_{c}": proba[:, i] for i, c in enumerate(classes)}})
            table.to_csv(args.predictions, index=False)
            print(f"test probabilities written to {args.predictions}")
        # the ensemble preset's rule, fixed in advance: the equal mean with the SVM's probabilities
        svm = fitted["svm, claim prepended"]
        svm_proba = svm.predict_proba(test)[:, [list(map(str, svm.classes_)).index(c) for c in classes]]
        mixed = (proba + svm_proba) / 2
        mix_score = macro_f1(gold, [classes[i] for i in mixed.argmax(axis=1)], classes)
        print(f"{'transformer + svm (equal mean)':<34}{mix_score:>15.3f}", flush=True)
        print(f"{'reference: plain MiniLM fine-tune':<34}{REFERENCE_FINE_TUNE:>15.3f}   (benchmarks README, max length 192)")


if __name__ == "__main__":
    main()
