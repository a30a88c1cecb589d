"""Ways to adapt the transformer and the ensemble to a new pact, on one base model per seed.

The few-shot protocol of ``experiments/few-shot.toml`` trains a base model per seed and adapts it
with one recipe per model. This benchmark trains the bases of that config once per seed (the SVM,
the transformer and the ensemble that takes both) and scores several adaptation recipes on the
same held-out articles, shots and evaluation rows as the protocol (``draw_shots``), so that
recipes are compared like with like at the cost of one base training per seed:

- ``transformer``: continued fine-tuning with the family's few-shot defaults, and a gentler one
  (``--gentle-lr``, ``--gentle-epochs``);
- ``tfidf-svm``: the penalty toward the source weights;
- ``ensemble``: every member adapted (the default recipe), only the SVM adapted (the transformer
  kept as trained), and the SVM with the gentle transformer. An ensemble's probabilities are the
  weighted mean of its members', so its recipes are scored from the members' adapted models.

    python bench/bench_adapt.py                      # seeds 0, 1, 2: about 30 minutes on 2 cores
    python bench/bench_adapt.py --seeds 0 --shots 0,16

Prints per recipe the mean macro-F1 over articles x seeds for each number of labels, with the
per-article means at the largest number; nothing is asserted. The recipes are compared on the
unseen-article split's three test articles, the same ones the committed few-shot results use.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "few-shot.toml"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shots", default=None, help="e.g. 0,16,32,64 (default: the config's)")
    parser.add_argument("--gentle-lr", type=float, default=1e-5)
    parser.add_argument("--gentle-epochs", type=int, default=4)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from comment_stance.data import Dataset
    from comment_stance.experiments.config import load_config, model_params
    from comment_stance.experiments.protocols import draw_shots, load_evaluation_data
    from comment_stance.experiments.runner import FittedModels
    from comment_stance.metrics import macro_f1
    from comment_stance.training import model_frame

    os.chdir(REPO)  # the config's data paths are relative to the checkout
    config = load_config(args.config)
    name, spec = next((n, s) for n, s in config["evaluations"].items() if s["protocol"] == "few-shot")
    if args.shots:
        spec = dict(spec, shots=[int(k) for k in args.shots.split(",")])
    data = load_evaluation_data(name, spec)
    shots = spec["shots"]
    seeds = [int(s) for s in args.seeds.split(",")]
    one, five, _ = os.getloadavg()
    print(f"bench_adapt: {args.config} ({name}), seeds {seeds}, shots {shots} "
          f"[load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]", flush=True)

    recipes = ["transformer (lr 3e-5, 8 epochs: default)",
               f"transformer (lr {args.gentle_lr:g}, {args.gentle_epochs} epochs)",
               "tfidf-svm (default)",
               "ensemble: every member adapts (default)",
               "ensemble: only the SVM adapts",
               f"ensemble: SVM + transformer at lr {args.gentle_lr:g}"]
    scores: dict[str, dict[str, dict[int, list[float]]]] = {r: {} for r in recipes}  # recipe -> group -> k -> seeds
    for seed in seeds:
        fitted = FittedModels()
        fitted.scope(name, seed)
        groups = data.few_shot_groups()
        dataset = Dataset(train=groups[0].train, dev=groups[0].dev, source=Path(spec["data"]))
        bases = {}
        started = time.perf_counter()
        for model in ("tfidf-svm", "transformer", "ensemble"):
            preset, params = model_params(config, model)
            bases[model] = fitted.fit("base", dataset, preset, dict(params, seed=seed), None, False)[0].model
        weights = bases["ensemble"]._normalised_weights(2)  # as the ensemble's predict_proba weighs its members
        order = [str(m) for m in bases["ensemble"].members]
        print(f"seed {seed}: bases trained in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        for group in groups:
            pool, evaluation = draw_shots(group.heldout, shots, seed, group.name)
            test = model_frame(group.heldout.iloc[evaluation], *data.context)
            gold = group.heldout["label"].iloc[evaluation].astype(str).tolist()
            classes = [str(c) for c in bases["transformer"].classes_]
            for k in shots:
                svm, tr = bases["tfidf-svm"], bases["transformer"]
                gentle = tr
                if k:
                    labelled = group.heldout.iloc[pool[:k]]
                    X, y = model_frame(labelled, *data.context), labelled["label"].astype(str).tolist()
                    svm, tr = bases["tfidf-svm"].adapt(X, y), bases["transformer"].adapt(X, y)
                    gentle = bases["transformer"].adapt(X, y, lr=args.gentle_lr, epochs=args.gentle_epochs)
                p_base = bases["transformer"].predict_proba(test)
                p = {"svm": svm.predict_proba(test), "tr": tr.predict_proba(test), "gentle": gentle.predict_proba(test)}
                assert [str(c) for c in svm.classes_] == classes and order == ["tfidf-svm", "transformer"]
                mixed = {
                    recipes[0]: p["tr"], recipes[1]: p["gentle"], recipes[2]: p["svm"],
                    recipes[3]: weights[0] * p["svm"] + weights[1] * p["tr"],
                    recipes[4]: weights[0] * p["svm"] + weights[1] * p_base,
                    recipes[5]: weights[0] * p["svm"] + weights[1] * p["gentle"],
                }
                for recipe, proba in mixed.items():
                    predicted = [classes[i] for i in np.asarray(proba).argmax(axis=1)]
                    scores[recipe].setdefault(group.name, {}).setdefault(k, []).append(macro_f1(gold, predicted, classes))
        print(f"seed {seed}: adaptations scored in {time.perf_counter() - started:.0f} s", flush=True)

    one, five, _ = os.getloadavg()
    width = max(map(len, recipes)) + 2
    print(f"\nmean macro-F1 over {len(data.few_shot_groups())} articles x {len(seeds)} seed(s) "
          f"[load {one:.2f}/{five:.2f}]")
    print(f"{'recipe':<{width}}" + "".join(f"{k:>8}" for k in shots) + f"   per article at {shots[-1]}")
    for recipe in recipes:
        by_group = scores[recipe]
        means = [np.mean([np.mean(by_group[g][k]) for g in by_group]) for k in shots]
        last = ", ".join(f"{g} {np.mean(by_group[g][shots[-1]]):.3f}" for g in sorted(by_group))
        print(f"{recipe:<{width}}" + "".join(f"{m:>8.3f}" for m in means) + f"   {last}")


if __name__ == "__main__":
    main()
