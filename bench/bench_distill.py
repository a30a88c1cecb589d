"""Distillation on new pacts: does the fast SVM gain from mpnet's labels on unlabelled comments? (issue 11)

The situation of a data team with an export of comments on a pact no model was trained on: the
slow, accurate teacher (transformer-mpnet, about 15 comments/s on 2 cores) labels a sample of
that export, and the fast student (the TF-IDF SVM, thousands a second) is trained on the
labelled corpus of the other pacts plus those teacher-labelled comments, then scores the rest.

This script measures that on leave-one-article-out without training a transformer: the teacher's
probabilities are those mpnet's study saved for every held-out pact
(``experiments/results/mpnet-loao``, committed with its predictions), computed by a model that
never saw that pact. For each of the twelve pacts, its comments are split at random into two
halves; the teacher labels half A (its gold labels are never read), and three systems are scored
on half B's gold labels:

- ``svm``: the SVM trained on the other eleven pacts (what LOAO measures);
- ``svm distilled``: the same plus half A with the teacher's labels
  (:func:`comment_stance.distillation.teacher_table`, as ``stance train --teacher`` builds them);
  ``--repeat K`` also scores the teacher's rows counted K times;
- ``teacher``: mpnet's own labels on half B (what the student learns toward).

Then the halves swap, so every comment is scored once. Rows print the pooled macro-F1 over all
2,526 comments with a 95% bootstrap interval and the paired Δ against the plain SVM, the mean
over the twelve pacts, and the lowest pact; the last lines time the distilled and the plain SVM
scoring the same comments side by side (the student keeps the fast model's speed), with the
load average.

    python bench/bench_distill.py --repeat 3            # about 20 minutes on a busy 2-core machine (load 3)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=str(REPO / "experiments" / "results" / "mpnet-loao"),
                        help="a run folder with the teacher's saved leave-one-article-out predictions")
    parser.add_argument("--teacher", default="transformer-mpnet", help="the teacher's model name in the run")
    parser.add_argument("--student", default="tfidf-svm", help="the student's preset")
    parser.add_argument("--repeat", type=int, action="append", default=[],
                        help="also count the teacher's rows this many times (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the halves and of the student")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))

    from comment_stance.distillation import teacher_table
    from comment_stance.experiments import load_run
    from comment_stance.metrics import macro_f1, resampled_macro_f1
    from comment_stance.models import make_model
    from comment_stance.training import model_frame

    run = load_run(args.run)
    table = run.predictions("leave-one-article-out", args.teacher)
    table = table[table["seed"] == table["seed"].min()].sort_values("id").reset_index(drop=True)
    columns = sorted(c for c in table.columns if c.startswith("p_"))
    classes = [c[2:] for c in columns]
    table["half"] = np.random.default_rng(args.seed).integers(0, 2, len(table))
    comments = table[["id", "text", "target"] + (["parent_id"] if "parent_id" in table.columns else [])]
    gold_rows = table.assign(label=table["gold"])[["id", "text", "target", "label"]]

    systems = ["svm", "svm distilled"] + [f"svm distilled, teacher rows x{k}" for k in args.repeat] + ["teacher"]
    predicted = {name: pd.Series(index=table.index, dtype=object) for name in systems}
    used = 0
    for fold in sorted(table["fold"].unique()):
        others = gold_rows[table["fold"] != fold]
        student_of = {}
        plain = make_model(args.student, seed=args.seed).fit(model_frame(others), others["label"].tolist())
        for half in (0, 1):
            a = (table["fold"] == fold) & (table["half"] == half)
            b = (table["fold"] == fold) & (table["half"] != half)
            rows = teacher_table(comments[a], table.loc[a, columns].to_numpy(), classes).table
            used += len(rows)
            frame_b = model_frame(comments[b])
            predicted["svm"][b] = plain.predict(frame_b)
            for name, times in [("svm distilled", 1)] + [(f"svm distilled, teacher rows x{k}", k) for k in args.repeat]:
                fit = pd.concat([others] + [rows.drop(columns="teacher_confidence")] * times, ignore_index=True)
                student = make_model(args.student, seed=args.seed).fit(model_frame(fit), fit["label"].tolist())
                predicted[name][b] = student.predict(frame_b)
                student_of[name] = student
            predicted["teacher"][b] = [classes[i] for i in table.loc[b, columns].to_numpy().argmax(axis=1)]
        print(f"{fold}: " + ", ".join(f"{name} {macro_f1(table.loc[table['fold'] == fold, 'gold'].tolist(), predicted[name][table['fold'] == fold].tolist(), classes):.3f}"
                                        for name in systems), flush=True)

    gold = table["gold"].tolist()
    lists = [predicted[name].tolist() for name in systems]
    resampled = resampled_macro_f1(gold, *lists, labels=classes, n_resamples=args.resamples, seed=0)
    per_fold = {name: [macro_f1(table.loc[table["fold"] == f, "gold"].tolist(),
                                predicted[name][table["fold"] == f].tolist(), classes)
                       for f in sorted(table["fold"].unique())] for name in systems}
    print(f"\nbench_distill: {args.run} ({args.teacher} teaches {args.student}); {len(table)} comments of "
          f"{table['fold'].nunique()} held-out pacts, each scored on the half the teacher did not label; "
          f"{used} teacher-labelled comments in all")
    print(f"{'system':<36}{'pooled':>8}{'95% CI':>17}{'Δ vs svm':>10}{'Δ <= 0':>8}{'pact mean':>11}{'lowest':>8}")
    for i, name in enumerate(systems):
        low, high = np.quantile(resampled[i], [0.025, 0.975])
        delta = resampled[i] - resampled[0]
        compared = f"{np.mean(delta):>+10.3f}{np.mean(delta <= 0):>8.3f}" if i else f"{'':>18}"
        print(f"{name:<36}{macro_f1(gold, lists[i], classes):>8.3f}{f'[{low:.3f}, {high:.3f}]':>17}{compared}"
              f"{np.mean(per_fold[name]):>7.3f} ± {np.std(per_fold[name]):.3f}{min(per_fold[name]):>8.3f}")

    # speed: the last fold's plain and distilled SVMs scoring the same comments, side by side
    frame = model_frame(comments)
    timings = {}
    for name, model in (("svm", plain), ("svm distilled", student_of["svm distilled"])):
        model.predict_proba(frame.head(50))
        start = time.perf_counter()
        model.predict_proba(frame)
        timings[name] = len(frame) / (time.perf_counter() - start)
    one, five, _ = os.getloadavg()
    print(f"\nscoring {len(frame)} comments [load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]: svm {timings['svm']:,.0f}/s, "
          f"svm distilled {timings['svm distilled']:,.0f}/s (ratio {timings['svm distilled'] / timings['svm']:.2f})")


if __name__ == "__main__":
    main()
