"""The off-topic gate on held-out comments: flag precision and recall, on-topic comments wrongly
flagged, and the three-way macro-F1 on on-topic test comments with and without the gate.

For each split, a stance model is trained with ``train(..., off_topic=...)`` (the gate's threshold
is chosen on dev), saved and loaded again, and the test comments of the split (all on-topic) and
of the off-topic test file are scored through :func:`comment_stance.scoring.predict`, the path the
CLI and the service use. The gate may only add ``needs_review``/``review_reason``: the script
fails if any label differs from the same model scored without its gate.

    python bench/bench_offtopic.py                                  # random and unseen-article, tfidf-logreg
    python bench/bench_offtopic.py --splits random --model tfidf-svm
    python bench/bench_offtopic.py --tiny                            # 150 training rows: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="random,unseen-article", help="comma-separated split folders under --root")
    parser.add_argument("--root", default="data/processed", help="folder holding the splits and off-topic/")
    parser.add_argument("--model", default="tfidf-logreg", help="stance model preset")
    parser.add_argument("--tiny", action="store_true", help="train on 150 rows only (a smoke test of the script)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    root = Path(args.root)
    if not (root / "off-topic").exists():
        sys.exit(f"skipped: {root / 'off-topic'} not found (run python data/build.py build)")

    import numpy as np
    import pandas as pd

    from comment_stance.data import Dataset, load_dataset
    from comment_stance.metrics import macro_f1
    from comment_stance.offtopic import flag_scores
    from comment_stance.persist import load_model
    from comment_stance.scoring import predict
    from comment_stance.training import model_frame, train

    off = load_dataset(root / "off-topic")
    results = {}
    for split in args.splits.split(","):
        data = load_dataset(root / split)
        off_data = off
        if args.tiny:
            data = Dataset(train=data.train.sample(150, random_state=0), dev=data.dev, test=data.test,
                           source=data.source, files=data.files)
            off_data = Dataset(train=off.train.sample(40, random_state=0), dev=off.dev, test=off.test,
                               source=off.source, files=off.files)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            trained = train(data, args.model, Path(tmp) / "model", off_topic=off_data, evaluate_on=())
            model = load_model(trained.folder)  # what users get: the gate comes back from off_topic/
        train_s = time.perf_counter() - started
        on_test = model_frame(data.test, data.train)
        off_test = model_frame(off.test)
        both = pd.concat([on_test, off_test], ignore_index=True)
        is_off = np.r_[np.zeros(len(on_test), dtype=bool), np.ones(len(off_test), dtype=bool)]

        gated = predict(model, both)
        gate = model.off_topic_
        model.off_topic_ = None
        plain = predict(model, both)
        model.off_topic_ = gate
        if not (gated["label"].to_numpy() == plain["label"].to_numpy()).all():
            sys.exit(f"{split}: the gate changed stance labels; it may only flag")
        flagged = gated["review_reason"].fillna("").str.contains("off_topic").to_numpy()
        labels = [str(c) for c in model.classes_]
        truth = on_test["label"].tolist()
        f1_plain = macro_f1(truth, plain["label"][: len(on_test)].tolist(), labels)
        f1_gated = macro_f1(truth, gated["label"][: len(on_test)].tolist(), labels)
        # what a moderator sees if flagged comments are set aside: macro-F1 of the unflagged on-topic ones
        kept = ~flagged[: len(on_test)]
        f1_unflagged = macro_f1([t for t, k in zip(truth, kept) if k],
                                [p for p, k in zip(gated["label"][: len(on_test)], kept) if k], labels)
        results[split] = {
            "threshold": gate.threshold_,
            "flag": flag_scores(flagged, is_off),
            "macro_f1_on_topic_test": {"without_gate": f1_plain, "with_gate": f1_gated,
                                       "unflagged_only": f1_unflagged},
            "train_s": round(train_s, 1),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"model {args.model}{' (tiny)' if args.tiny else ''}; test = held-out on-topic comments of the split "
          f"+ {len(off.test)} held-out off-topic comments")
    print(f"{'split':16}{'thr':>6}{'prec':>7}{'recall':>7}{'F1':>7}{'on-topic flagged':>18}"
          f"{'macroF1 no gate':>17}{'with gate':>11}{'unflagged':>11}")
    for split, r in results.items():
        f, m = r["flag"], r["macro_f1_on_topic_test"]
        print(f"{split:16}{r['threshold']:6.3f}{f['precision']:7.3f}{f['recall']:7.3f}{f['f1']:7.3f}"
              f"{f['false_flags']:>9} / {f['on_topic']:<6}{m['without_gate']:17.4f}{m['with_gate']:11.4f}"
              f"{m['unflagged_only']:11.4f}")


if __name__ == "__main__":
    main()
