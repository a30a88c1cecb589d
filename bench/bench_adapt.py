"""Ways to adapt the transformer and the ensemble to a new pact, on one base model per seed.

The few-shot protocol of ``experiments/few-shot.toml`` trains a base model per seed and adapts it
with one recipe per model. This benchmark trains the bases of that config once per seed (the SVM,
the transformer and the ensemble that takes both) and scores several adaptation recipes on the
same held-out articles, shots and evaluation rows as the protocol (``draw_shots``), so that
recipes are compared like with like at the cost of one base training per seed:

- ``transformer``: continued fine-tuning with the family's few-shot defaults, a gentler one
  (``--gentle-lr``, ``--gentle-epochs``), and head-only adaptation (``method="head"``: the last
  layer moved toward the new rows with the TF-IDF family's penalty, ``--head-C``);
- ``tfidf-svm``: the penalty toward the source weights;
- ``ensemble``: every member adapted (``members="all"``), only the SVM adapted (the default since
  2026-12-01: the transformer kept as trained), the SVM with the gentle transformer, and the SVM
  with the head-adapted transformer. An
  ensemble's probabilities are the weighted mean of its members', so its recipes are scored from
  the members' adapted models.

    python bench/bench_adapt.py                      # seeds 0, 1, 2: about 30 minutes on 2 cores
    python bench/bench_adapt.py --seeds 0 --shots 0,16
    python bench/bench_adapt.py --config experiments/few-shot-mpnet.toml --skip-gentle   # mpnet (installed)
    python bench/bench_adapt.py --base other-groups --seeds 0 --skip-gentle \
        --groups a01,a02,a03,a04,a06,a07,a08,a10,a11  # leave-one-article-out bases: about 50 minutes

With ``--base other-groups`` each held-out article gets its own base, trained on the other eleven
articles of ``data/processed/random`` (as ``experiments/few-shot-tfidf.toml``'s leave-one-article-out
evaluation does), which checks on articles that played no part in choosing a recipe.

Prints per recipe the mean macro-F1 over articles x seeds for each number of labels, with the
per-article means at the largest number; nothing is asserted. By default the recipes are
compared on the unseen-article split's three test articles, the same ones the committed few-shot
results use.
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
    parser.add_argument("--base", choices=["train-file", "other-groups"], default="train-file",
                        help="train-file: the config's evaluation; other-groups: one base per held-out "
                             "article, trained on the other articles of data/processed/random")
    parser.add_argument("--groups", default=None, help="held-out articles to score, e.g. a01,a03 (default: all)")
    parser.add_argument("--skip-gentle", action="store_true", help="leave out the gentle transformer recipes")
    parser.add_argument("--head-C", default="1", help="C of the head-only recipes, e.g. 0.1,1 (one recipe pair each)")
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
    if args.base == "other-groups":
        spec = dict(spec, base="other-groups", data="data/processed/random")
    data = load_evaluation_data(name, spec)
    # the ensemble of the config and its two members (model names of the config: e.g. tfidf-svm, transformer)
    ens_name = next(n for n, m in config["models"].items() if m["preset"] == "ensemble")
    svm_name, tr_name = [str(m) for m in config["models"][ens_name]["members"]]
    shots = spec["shots"]
    seeds = [int(s) for s in args.seeds.split(",")]
    one, five, _ = os.getloadavg()
    wanted = set(args.groups.split(",")) if args.groups else None
    print(f"bench_adapt: {args.config} ({name}, base {spec['base']}), seeds {seeds}, shots {shots} "
          f"[load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs]", flush=True)

    # Each recipe names the SVM's and the transformer's probabilities it uses ("base": the transformer
    # as trained; "gentle": adapted at --gentle-lr); a recipe with both weighs them as the ensemble does.
    gentle_label = f"lr {args.gentle_lr:g}, {args.gentle_epochs} epochs"
    recipes = {"transformer (lr 3e-5, 8 epochs: default)": (None, "tr"),
               f"transformer ({gentle_label})": (None, "gentle"),
               "tfidf-svm (default)": ("svm", None),
               "ensemble: every member adapts (members=all)": ("svm", "tr"),
               "ensemble: only the SVM adapts (default)": ("svm", "base"),
               f"ensemble: SVM + transformer at {gentle_label}": ("svm", "gentle")}
    head_Cs = [float(c) for c in args.head_C.split(",")]
    for c in head_Cs:
        recipes[f"transformer, head only (C {c:g})"] = (None, f"head {c:g}")
        recipes[f"ensemble: SVM + transformer head only (C {c:g})"] = ("svm", f"head {c:g}")
    if args.skip_gentle:
        recipes = {r: parts for r, parts in recipes.items() if "gentle" not in parts}
    scores: dict[str, dict[str, dict[int, list[float]]]] = {r: {} for r in recipes}  # recipe -> group -> k -> seeds
    for seed in seeds:
        fitted = FittedModels()
        fitted.scope(name, seed)
        groups = [g for g in data.few_shot_groups() if wanted is None or g.name in wanted]
        if wanted is not None and len(groups) != len(wanted):
            raise SystemExit(f"bench_adapt: --groups {args.groups}: unknown group(s) "
                             f"{sorted(wanted - {g.name for g in groups})}")
        bases_by_train: dict[int, dict] = {}
        train_s = adapt_s = 0.0
        for group in groups:
            started = time.perf_counter()
            if id(group.train) not in bases_by_train:
                dataset = Dataset(train=group.train, dev=group.dev, source=Path(spec["data"]))
                tag = "base" if spec["base"] == "train-file" else f"base-{group.name}"
                bases_by_train[id(group.train)] = {
                    model: fitted.fit(tag, dataset, *_with_seed(model_params(config, model), seed), None, False)[0].model
                    for model in (svm_name, tr_name, ens_name)}
            bases = bases_by_train[id(group.train)]
            train_s += time.perf_counter() - started
            weights = bases[ens_name]._normalised_weights(2)  # as the ensemble's predict_proba weighs its members
            order = [str(m) for m in bases[ens_name].members]
            started = time.perf_counter()
            pool, evaluation = draw_shots(group.heldout, shots, seed, group.name)
            test = model_frame(group.heldout.iloc[evaluation], *data.context)
            gold = group.heldout["label"].iloc[evaluation].astype(str).tolist()
            classes = [str(c) for c in bases[tr_name].classes_]
            p_base = bases[tr_name].predict_proba(test)
            for k in shots:
                svm, tr = bases[svm_name], bases[tr_name]
                gentle = tr
                if k:
                    labelled = group.heldout.iloc[pool[:k]]
                    X, y = model_frame(labelled, *data.context), labelled["label"].astype(str).tolist()
                    svm, tr = bases[svm_name].adapt(X, y), bases[tr_name].adapt(X, y)
                    if not args.skip_gentle:
                        gentle = bases[tr_name].adapt(X, y, lr=args.gentle_lr, epochs=args.gentle_epochs)
                    heads = {c: bases[tr_name].adapt(X, y, method="head", C=c) for c in head_Cs}
                p = {"svm": svm.predict_proba(test), "tr": tr.predict_proba(test), "base": p_base,
                     **{f"head {c:g}": p_base if not k else heads[c].predict_proba(test) for c in head_Cs}}
                p["gentle"] = p_base if gentle is bases[tr_name] else gentle.predict_proba(test)
                assert [str(c) for c in svm.classes_] == classes and order == [svm_name, tr_name]
                for recipe, (from_svm, from_tr) in recipes.items():
                    mixed = (p[from_tr] if from_svm is None else p[from_svm] if from_tr is None
                             else weights[0] * p[from_svm] + weights[1] * p[from_tr])
                    predicted = [classes[i] for i in np.asarray(mixed).argmax(axis=1)]
                    scores[recipe].setdefault(group.name, {}).setdefault(k, []).append(macro_f1(gold, predicted, classes))
            adapt_s += time.perf_counter() - started
            print(f"seed {seed}, {group.name}: " + ", ".join(
                f"{r.split(' (')[0].replace('ensemble: ', 'ens ')} {scores[r][group.name][shots[-1]][-1]:.3f}"
                for r in recipes) + f" at {shots[-1]} labels", flush=True)
        print(f"seed {seed}: bases trained in {train_s:.0f} s, adaptations scored in {adapt_s:.0f} s", flush=True)

    one, five, _ = os.getloadavg()
    width = max(map(len, recipes)) + 2
    print(f"\nmean macro-F1 over {len(scores[next(iter(recipes))])} articles x {len(seeds)} seed(s) "
          f"[load {one:.2f}/{five:.2f}]")
    print(f"{'recipe':<{width}}" + "".join(f"{k:>8}" for k in shots) + f"   per article at {shots[-1]}")
    for recipe in recipes:
        by_group = scores[recipe]
        means = [np.mean([np.mean(by_group[g][k]) for g in by_group]) for k in shots]
        last = ", ".join(f"{g} {np.mean(by_group[g][shots[-1]]):.3f}" for g in sorted(by_group))
        print(f"{recipe:<{width}}" + "".join(f"{m:>8.3f}" for m in means) + f"   {last}")


def _with_seed(preset_params: tuple[str, dict], seed: int) -> tuple[str, dict]:
    preset, params = preset_params
    return preset, dict(params, seed=seed)


if __name__ == "__main__":
    main()
