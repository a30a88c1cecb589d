"""Benchmarks of the transformer family against its Hugging Face peers, side by side in one process.

Sections (``--sections``, comma-separated; default ``train,infer,int8``):

- ``train``: ``TransformerModel.fit`` against ``transformers.Trainer`` with the same model, data
  and settings (lr, epochs, batch size, warm-up, weight decay, max length, seed, length-grouped
  batches, dev macro-F1 after every epoch, best-checkpoint selection, threads). Throughput is
  training examples processed per wall-clock second of the whole run (model loading, dev
  scoring and checkpoint selection included; our run also includes its tokenizing, Trainer gets
  its data pre-tokenized). Also prints each run's dev macro-F1.
- ``infer``: ``predict_proba`` of the model trained in ``train`` against
  ``transformers.pipeline("text-classification")`` on the same folder and comment pairs (default
  batch size 1 and the same batch size as ours), and against the compute bound: the model's
  FLOPs per comment at its real token count versus a matmul GFLOP/s measured here and now.
- ``int8``: dynamic int8 quantization versus fp32: speed ratio and macro-F1 difference.
- ``quality``: test macro-F1 over ``--seeds`` on each ``--quality-data`` dataset with the default
  hyper-parameters, beside the TF-IDF baselines (slow: minutes per seed).

A quick run takes 2-4 minutes on 2 cores::

    python bench/bench_transformer.py --data data/processed/random --train-size 400 --epochs 2
    python bench/bench_transformer.py --sections quality --quality-data data/processed/random \\
        data/processed/unseen-article --seeds 0,1,2

Timings share the machine with whatever else runs: run it on a quiet machine, and read the
ratios (both sides are measured in the same process, one after the other) rather than the
absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from comment_stance.data import load_dataset  # noqa: E402
from comment_stance.metrics import macro_f1  # noqa: E402
from comment_stance.models.base import as_inputs  # noqa: E402
from comment_stance.models.transformer import (TransformerModel, _load_base, _quiet_transformers,  # noqa: E402
                                               resolve_base_model)
from comment_stance.training import model_frame  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: data/processed/random, else tests/fixtures/tiny)")
    parser.add_argument("--sections", default="train,infer,int8")
    parser.add_argument("--train-size", type=int, default=400, help="training comments (cycled if fewer)")
    parser.add_argument("--dev-size", type=int, default=150)
    parser.add_argument("--infer-size", type=int, default=500, help="comments scored in infer/int8")
    parser.add_argument("--train-repeats", type=int, default=1, help="training runs of each side (best is kept)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds of each inference run (best is kept)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--inference-batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality-data", type=Path, nargs="*", default=None)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()}}
    workdir = Path(tempfile.mkdtemp(prefix="bench-transformer-"))
    folder = None
    if {"train", "infer", "int8"} & set(sections):
        data = load_dataset(args.data or _default_data())
        train, dev = _sized(data.train, args.train_size), _sized(data.dev if data.dev is not None else data.train,
                                                                  args.dev_size)
        scored = data.test if data.test is not None else dev
        context = [f for f in (data.train, data.dev) if f is not None]
        train_frame, dev_frame = model_frame(train), model_frame(dev, *context)
        model = TransformerModel(max_length=args.max_length, batch_size=args.batch_size, lr=args.lr,
                                 epochs=args.epochs, patience=0, seed=args.seed,
                                 inference_batch_size=args.inference_batch_size)
        if "train" in sections:
            results["train"] = bench_training(model, train_frame, train["label"].tolist(), dev_frame,
                                              dev["label"].tolist(), workdir, args.train_repeats)
        else:
            model.fit(train_frame, train["label"].tolist(), dev=(dev_frame, dev["label"].tolist()))
        folder = model.save(workdir / "ours")
        comments = model_frame(_sized(scored, args.infer_size), *context)
        if "infer" in sections:
            results["infer"] = bench_inference(folder, comments, args.inference_batch_size, args.max_length,
                                               args.repeats)
        if "int8" in sections:
            results["int8"] = bench_int8(folder, model_frame(scored, *context), scored["label"].tolist(), comments,
                                         args.repeats)
    if "quality" in sections:
        shipped = (REPO / "data/processed/random", REPO / "data/processed/unseen-article")
        paths = args.quality_data or [p for p in shipped if p.exists()]
        results["quality"] = bench_quality(paths, [int(s) for s in args.seeds.split(",")], args.threads)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


# -- training ---------------------------------------------------------------------------------------
def bench_training(model: TransformerModel, train_frame, train_labels, dev_frame, dev_labels, workdir: Path,
                   repeats: int = 1) -> dict:
    _warm_up(model)
    ours_s = peer_s = float("inf")
    for _ in range(repeats):  # the sides take turns; each keeps its best time
        start = time.perf_counter()
        model.fit(train_frame, train_labels, dev=(dev_frame, dev_labels))
        ours_s = min(ours_s, time.perf_counter() - start)
        ours_f1 = macro_f1(dev_labels, model.predict(dev_frame).tolist(), model.classes_.tolist())
        seconds, peer_f1, peer_epochs = _train_with_trainer(model, train_frame, train_labels, dev_frame, dev_labels,
                                                            workdir)
        peer_s = min(peer_s, seconds)
    n = len(train_labels)
    ours_rate = n * len(model.history_) / ours_s
    peer_rate = n * peer_epochs / peer_s
    out = {"train_comments": n, "dev_comments": len(dev_labels), "epochs": len(model.history_),
           "ours": {"time_s": ours_s, "examples_per_s": ours_rate, "dev_macro_f1": ours_f1},
           "trainer": {"time_s": peer_s, "examples_per_s": peer_rate, "dev_macro_f1": peer_f1},
           "speed_ratio": ours_rate / peer_rate, "dev_macro_f1_difference": ours_f1 - peer_f1}
    _table(f"training: {n} comments x {out['epochs']} epochs, dev {len(dev_labels)}",
           ["", "time s", "examples/s", "dev macro-F1"],
           [["comment-stance fit", f"{ours_s:.1f}", f"{ours_rate:.1f}", f"{ours_f1:.3f}"],
            ["HF Trainer", f"{peer_s:.1f}", f"{peer_rate:.1f}", f"{peer_f1:.3f}"],
            ["ratio / difference", "", f"{out['speed_ratio']:.2f}x", f"{out['dev_macro_f1_difference']:+.3f}"]])
    return out


def _train_with_trainer(model: TransformerModel, train_frame, train_labels, dev_frame, dev_labels, workdir: Path):
    """The same fine-tuning through ``transformers.Trainer``: returns (seconds, dev macro-F1, epochs)."""
    import inspect

    import datasets
    import transformers
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments

    classes = model.classes_.tolist()
    index = {c: i for i, c in enumerate(classes)}
    start = time.perf_counter()
    transformers.set_seed(model.seed)
    tokenizer, peer = _load_base(resolve_base_model(model.base_model), classes)

    def encode(frame, labels):
        firsts, seconds = model._segments(as_inputs(frame), tokenizer)
        enc = tokenizer([f or "" for f in firsts], seconds, truncation=True, max_length=model.max_length)
        return datasets.Dataset.from_dict({**enc, "labels": [index[v] for v in labels]})

    train_ds, dev_ds = encode(train_frame, train_labels), encode(dev_frame, dev_labels)
    tokenize_s = time.perf_counter() - start

    def compute_metrics(prediction):
        predicted = [classes[i] for i in np.asarray(prediction.predictions).argmax(axis=1)]
        return {"macro_f1": macro_f1([classes[i] for i in prediction.label_ids], predicted, classes)}

    accepted = set(inspect.signature(TrainingArguments.__init__).parameters)
    settings = dict(output_dir=str(workdir / "trainer"), per_device_train_batch_size=model.batch_size,
                    per_device_eval_batch_size=model.inference_batch_size, learning_rate=model.lr,
                    num_train_epochs=model.epochs, weight_decay=model.weight_decay, max_grad_norm=model.max_grad_norm,
                    lr_scheduler_type="linear", seed=model.seed, eval_strategy="epoch", save_strategy="epoch",
                    save_only_model=True, save_total_limit=1, load_best_model_at_end=True,
                    metric_for_best_model="macro_f1", greater_is_better=True, report_to="none", use_cpu=True,
                    disable_tqdm=True, logging_strategy="no")
    if "train_sampling_strategy" in accepted:  # transformers 5
        settings.update(train_sampling_strategy="group_by_length", warmup_steps=model.warmup_ratio)
    else:
        settings.update(group_by_length=True, warmup_ratio=model.warmup_ratio)
    shutil.rmtree(workdir / "trainer", ignore_errors=True)
    trainer = Trainer(model=peer, args=TrainingArguments(**settings), train_dataset=train_ds, eval_dataset=dev_ds,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    trainer.remove_callback(PrinterCallback)  # its per-epoch dicts would clutter the tables
    with _quiet_transformers():
        trainer.train()
    elapsed = time.perf_counter() - start - tokenize_s
    score = trainer.evaluate()["eval_macro_f1"]
    return elapsed, float(score), model.epochs


def _warm_up(model: TransformerModel) -> None:
    """Pay first-use costs (imports, loading code, kernel set-up) before either side is timed."""
    import datasets  # noqa: F401
    from transformers import Trainer  # noqa: F401

    tokenizer, net = _load_base(resolve_base_model(model.base_model), ["a", "b"])
    batch = tokenizer(["warm up", "the kernels"], ["a", "pair"], return_tensors="pt", padding=True)
    net(**batch).logits.sum().backward()


# -- inference --------------------------------------------------------------------------------------
def bench_inference(folder: Path, comments, batch_size: int, max_length: int, repeats: int = 2) -> dict:
    import torch
    from transformers import pipeline

    from comment_stance.persist import load_model

    ours = load_model(folder)
    firsts, seconds = ours._segments(as_inputs(comments), ours.tokenizer_)
    pairs = [{"text": f, "text_pair": s} if f else {"text": s} for f, s in zip(firsts, seconds)]
    with _quiet_transformers():
        pipe = pipeline("text-classification", model=str(folder / "weights"), device=-1)
    runs = {"ours": lambda: ours.predict_proba(comments)}
    for peer_batch in (1, batch_size):
        runs[f"pipeline_batch_{peer_batch}"] = (
            lambda b=peer_batch: pipe(pairs, top_k=None, truncation=True, max_length=max_length, batch_size=b))
    seconds_of = _interleaved_best(runs, warm_up={
        "ours": lambda: ours.predict_proba(comments.iloc[:batch_size]),
        **{name: (lambda b=int(name.rsplit("_", 1)[1]): pipe(pairs[:batch_size], top_k=None, truncation=True,
                                                            max_length=max_length, batch_size=b))
           for name in runs if name != "ours"}}, repeats=repeats)
    ours_s = seconds_of["ours"]
    proba = ours.predict_proba(comments.iloc[:50])
    out: dict = {"comments": len(comments), "ours": {"comments_per_s": len(comments) / ours_s}}
    rows: list[list[str]] = []
    for name, seconds_peer in seconds_of.items():
        if name == "ours":
            continue
        out[name] = {"comments_per_s": len(comments) / seconds_peer, "ratio": seconds_peer / ours_s}
        rows.append([name.replace("_batch_", ", batch "), f"{len(comments) / seconds_peer:.1f}",
                     f"{seconds_peer / ours_s:.2f}x"])
    # same answers: the pipeline's softmax is ours at temperature 1
    peer = pipe(pairs[:50], top_k=None, truncation=True, max_length=max_length, batch_size=batch_size)
    agree = np.mean([max(p, key=lambda d: d["score"])["label"] == ours.classes_[i]
                     for p, i in zip(peer, proba.argmax(axis=1))])
    # the compute bound: useful FLOPs (no padding) against measured matmul speed
    tokens = np.array([len(ids) for ids in _encoded(ours, comments)["input_ids"]])
    flops = sum(_flops_per_sequence(ours.model_.config, t) for t in tokens)
    gflops = _matmul_gflops(torch)
    bound = len(comments) / (flops / (gflops * 1e9))
    out.update({"same_labels_as_pipeline": float(agree), "mean_tokens": float(tokens.mean()),
                "gflop_per_comment": flops / len(comments) / 1e9, "matmul_gflops": gflops,
                "compute_bound_comments_per_s": bound, "fraction_of_bound": out["ours"]["comments_per_s"] / bound})
    _table(f"inference: {len(comments)} comments, mean {tokens.mean():.0f} tokens, "
           f"{flops / len(comments) / 1e9:.2f} GFLOP each; matmul {gflops:.0f} GFLOP/s",
           ["", "comments/s", "ours is"],
           [["comment-stance predict_proba", f"{out['ours']['comments_per_s']:.1f}", ""], *rows,
            ["compute bound", f"{bound:.1f}", f"{out['fraction_of_bound']:.0%} of it"]])
    print(f"labels agree with the pipeline on {agree:.0%} of 50 comments")
    return out


def bench_int8(folder: Path, scored, labels, comments, repeats: int = 2) -> dict:
    from comment_stance.persist import load_model

    models = {"fp32": load_model(folder), "int8": load_model(folder, quantize="int8")}
    seconds_of = _interleaved_best({name: (lambda m=m: m.predict_proba(comments)) for name, m in models.items()},
                                   warm_up={name: (lambda m=m: m.predict_proba(comments.iloc[:64]))
                                            for name, m in models.items()}, repeats=repeats)
    out: dict = {}
    for name, model in models.items():
        f1 = macro_f1(labels, model.predict(scored).tolist(), model.classes_.tolist())
        out[name] = {"comments_per_s": len(comments) / seconds_of[name], "macro_f1": f1}
    out["speed_ratio"] = out["int8"]["comments_per_s"] / out["fp32"]["comments_per_s"]
    out["macro_f1_difference"] = out["int8"]["macro_f1"] - out["fp32"]["macro_f1"]
    _table(f"int8 dynamic quantization: speed on {len(comments)} comments, macro-F1 on {len(labels)}",
           ["", "comments/s", "macro-F1"],
           [["fp32", f"{out['fp32']['comments_per_s']:.1f}", f"{out['fp32']['macro_f1']:.3f}"],
            ["int8", f"{out['int8']['comments_per_s']:.1f}", f"{out['int8']['macro_f1']:.3f}"],
            ["ratio / difference", f"{out['speed_ratio']:.2f}x", f"{out['macro_f1_difference']:+.3f}"]])
    return out


# -- quality ----------------------------------------------------------------------------------------
def bench_quality(paths: list[Path], seeds: list[int], threads: int | None) -> dict:
    from comment_stance.training import train

    out: dict = {}
    rows = []
    for path in paths:
        scores: dict[str, list[float]] = {}
        for name in ("tfidf-logreg", "tfidf-svm"):
            scores[name] = [train(path, name, evaluate_on=("test",)).metrics["test"]["macro_f1"]]
        times = []
        for seed in seeds:
            params = {"seed": seed, **({"threads": threads} if threads else {})}
            result = train(path, "transformer", params=params, evaluate_on=("test",), progress=True)
            scores.setdefault("transformer", []).append(result.metrics["test"]["macro_f1"])
            times.append(result.time_s)
        out[str(path)] = {name: {"scores": s, "mean": statistics.mean(s),
                                 "sd": statistics.stdev(s) if len(s) > 1 else 0.0} for name, s in scores.items()}
        out[str(path)]["transformer"]["train_time_s"] = times
        for name, s in out[str(path)].items():
            rows.append([Path(path).name, name, f"{s['mean']:.3f}", f"{s['sd']:.3f}" if len(s["scores"]) > 1 else "-",
                         ", ".join(f"{v:.3f}" for v in s["scores"])])
    _table(f"test macro-F1 (transformer: seeds {seeds}, default settings)", ["data", "model", "mean", "sd", "runs"],
           rows)
    return out


# -- helpers ----------------------------------------------------------------------------------------
def _default_data() -> Path:
    shipped = REPO / "data" / "processed" / "random"
    return shipped if shipped.exists() else REPO / "tests" / "fixtures" / "tiny"


def _sized(frame, n: int):
    """``n`` rows of ``frame``: the first ``n``, or the rows repeated (with fresh ids) when it has fewer."""
    import pandas as pd

    if len(frame) >= n:
        return frame.iloc[:n].reset_index(drop=True)
    parts = []
    for k in range(-(-n // len(frame))):
        part = frame.copy()
        part["id"] = part["id"].astype(str) + f"~{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:n]


def _encoded(model, comments):
    from comment_stance.models.transformer import tokenize

    return tokenize(model.tokenizer_, *model._segments(as_inputs(comments), model.tokenizer_),
                    max_length=model.max_length, use_datasets=False)


def _flops_per_sequence(config, tokens: int) -> float:
    """Forward FLOPs of a BERT-style encoder on one unpadded sequence: 2 per multiply-add in the
    linear layers (attention projections and feed-forward) plus the two attention matmuls."""
    h, layers, ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    linear = 2 * tokens * (4 * h * h + 2 * h * ff)
    attention = 2 * 2 * tokens * tokens * h
    return layers * (linear + attention) + 2 * h * h + 2 * h * config.num_labels


def _matmul_gflops(torch, m: int = 2048, k: int = 384, n: int = 1536, repeats: int = 20) -> float:
    """fp32 matmul speed at the shape of the model's feed-forward layer, best of several runs."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * m * k * n / best / 1e9


def _interleaved_best(runs: dict, warm_up: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each run, the runs taking turns, so that a burst of load from other
    processes on a shared machine hits every side alike."""
    for fn in warm_up.values():
        fn()
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
