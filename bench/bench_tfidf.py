"""Overhead of comment-stance's TF-IDF family against the same bare scikit-learn pipeline.

Both sides train on the same texts and predict the same texts, alternating, in one process; the
script prints the median time of each and the ratio (ours / bare). It also times ``stance --help``
start-up and checks that it does not import torch.

    python bench/bench_tfidf.py                       # the shipped corpus (random split)
    python bench/bench_tfidf.py --data ../shared/benchmarks/arc --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/processed/random", help="dataset folder with train and test files")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--classifier", default="logreg", choices=["logreg"],
                        help="logreg only: the SVM adds cross-validated calibration that bare LinearSVC lacks")
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"skipped: {args.data} not found (pass --data)")

    import numpy as np

    from comment_stance.data import load_dataset
    from comment_stance.models.baselines import TfidfModel

    dataset = load_dataset(args.data)
    train, test = dataset.train, dataset.split("test")
    ours = TfidfModel(classifier=args.classifier)
    # the peer: the very pipeline our model wraps, fed the very strings it sees
    from comment_stance.models.base import as_inputs

    train_texts = ours._texts(as_inputs(train))
    test_texts = ours._texts(as_inputs(test))
    labels = train["label"].to_numpy()

    fit_ours, fit_bare, pred_ours, pred_bare = [], [], [], []
    for _ in range(args.repeats):
        t, model = timed(lambda: TfidfModel(classifier=args.classifier).fit(train, labels))
        fit_ours.append(t)
        t, pipe = timed(lambda: ours.make_pipeline().fit(train_texts, labels))
        fit_bare.append(t)
        t, p1 = timed(lambda: model.predict_proba(test))
        pred_ours.append(t)
        t, p2 = timed(lambda: pipe.predict_proba(test_texts))
        pred_bare.append(t)
    same = np.allclose(p1, p2)

    def row(name, a, b):
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:<10} comment-stance {ma * 1000:8.1f} ms   bare sklearn {mb * 1000:8.1f} ms   ratio {ma / mb:5.3f}")

    print(f"data: {args.data}  train {len(train)}  test {len(test)}  classifier {args.classifier}  "
          f"repeats {args.repeats}  identical probabilities: {same}")
    row("fit", fit_ours, fit_bare)
    row("predict", pred_ours, pred_bare)

    code = "import sys; from comment_stance.cli import main; sys.argv=['stance','--help']\ntry: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules, file=sys.stderr)"
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        runs.append(time.perf_counter() - start)
    bare = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
        bare.append(time.perf_counter() - start)
    print(f"stance --help: {statistics.median(runs) * 1000:.0f} ms (bare python start-up {statistics.median(bare) * 1000:.0f} ms); "
          f"imports torch: {done.stderr.strip()}")


if __name__ == "__main__":
    main()
