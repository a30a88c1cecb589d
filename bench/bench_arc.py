"""Do our defaults hold up on real comments? comment-stance against bare scikit-learn on ARC.

ARC (Hanselowski et al., 2018, COLING; comments from Habernal et al., 2018, NAACL): reader
comments on NYT "Room for Debate" pieces, stance toward a claim (agree / disagree / discuss).
The data stays outside the project; pass its folder (train.jsonl, test.jsonl):

    python bench/bench_arc.py ../shared/benchmarks/arc

Each line trains our model and the bare scikit-learn pipeline it is compared with, on the same
split in the same process, and prints both test macro-F1 scores and their difference. Bare
pipelines follow the benchmark's reference recipe: TF-IDF word 1-2 + char 2-5 n-grams,
LogisticRegression or LinearSVC, default settings, the claim optionally prepended.
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


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/benchmarks/arc")
    if not (folder / "train.jsonl").exists():
        print(f"skipped: no ARC data at {folder} (pass its folder as the first argument)")
        return
    from comment_stance.data import load_dataset
    from comment_stance.metrics import macro_f1
    from comment_stance.models import make_model

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
    for name, preset, params, classifier, prepend in settings:
        start = time.perf_counter()
        ours = macro_f1(gold, make_model(preset, **params).fit(train, train["label"]).predict(test).tolist())
        ours_s = time.perf_counter() - start
        if classifier is None:
            top = train["label"].value_counts().idxmax()
            bare = macro_f1(gold, [top] * len(gold))
        else:
            join = (lambda f: (f["target"] + " || " + f["text"]).tolist()) if prepend else (lambda f: f["text"].tolist())
            bare = macro_f1(gold, bare_pipeline(classifier).fit(join(train), train["label"]).predict(join(test)).tolist())
        print(f"{name:<34}{ours:>15.3f}{bare:>14.3f}{ours - bare:>+8.3f}   ({ours_s:.0f} s ours)", flush=True)


if __name__ == "__main__":
    main()
