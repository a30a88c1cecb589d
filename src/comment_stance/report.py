"""Leaderboards from run folders: Markdown for the terminal, a self-contained HTML page, and
the comparison of two runs. Everything is computed from the run folder (metrics and saved
predictions), so nothing is retrained. For a run folder written by ``stance experiment run``::

    from comment_stance.experiments import load_run
    from comment_stance.report import leaderboard, markdown
    board = leaderboard(load_run("experiments/runs/baseline-20250101-120000"))
    print(markdown(board))

The helpers at the end (:func:`misclassified`, :func:`errors_by`, :func:`article_scores`,
:func:`confusion_image`, :func:`article_chart`) serve the error-analysis notebook.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .calibration import ECE_BINS
from .errors import OutputError
from .plots import article_scores_png
from .experiments.runs import Run, load_run

#: p-values below this are marked with * in the tables
ALPHA = 0.05
REPORT_FILES = ("report.md", "report.html")


# -- the leaderboard as data -----------------------------------------------------------------------
def leaderboard(run: Run | str | Path, *, significance: str | None = None, n_resamples: int | None = None) -> dict[str, Any]:
    """One ranked table per evaluation of the run, as JSON-able data.

    Each row has the model's macro-F1 (mean over seeds, its sample std and the bootstrap CI of
    the seed average), F_avg, per-class F1, accuracy, training seconds, inference rows/s and, for
    every model but the reference, the difference to the best baseline with a paired test
    (``significance``: ``"paired-bootstrap"`` or ``"mcnemar"``; default: the run's config).
    """
    run = load_run(run) if not isinstance(run, Run) else run
    config = run.config
    scoring = config["scoring"]
    test = significance or scoring["significance"]
    resamples = n_resamples if n_resamples is not None else (scoring["bootstrap"] or 1000)
    metrics, timings, info = run.metrics, run.timings, run.info
    boards = {}
    curves = {}
    for evaluation, entry in metrics["evaluations"].items():
        if entry["protocol"] == "few-shot":
            curves[evaluation] = _curve_board(entry, metrics, timings["evaluations"][evaluation], scoring)
            continue
        rows = []
        for model, result in entry["models"].items():
            summary = result["summary"]
            timing = list(timings["evaluations"][evaluation][model].values())
            rates = [t["rows_per_s"] for t in timing if t.get("rows_per_s")]
            row = {
                "model": model,
                "preset": config["models"][model]["preset"],
                "seeds": summary["seeds"],
                "macro_f1": summary["macro_f1"]["mean"],
                "macro_f1_std": summary["macro_f1"]["std"],
                "macro_f1_ci": summary["macro_f1"].get("ci"),
                "f_avg": summary.get("f_avg", {}).get("mean"),
                "f_avg_std": summary.get("f_avg", {}).get("std"),
                "accuracy": summary["accuracy"]["mean"],
                "per_class_f1": {label: s["mean"] for label, s in summary["per_class_f1"].items()},
                "train_s": float(np.mean([t["train_s"] for t in timing])),
                "rows_per_s": float(np.mean(rates)) if rates else None,
                "fold_macro_f1": summary.get("fold_macro_f1"),
                "baseline": model in scoring["baselines"],
            }
            rows.append(row)
        rows.sort(key=lambda r: (-r["macro_f1"], r["model"]))
        baselines = [r for r in rows if r["baseline"]] or rows
        reference = baselines[0]["model"]
        for row in rows:
            row["vs_reference"] = None if row["model"] == reference else \
                _compare(run, evaluation, row["model"], reference, test, resamples)
        boards[evaluation] = {
            "protocol": entry["protocol"],
            "data": entry["data"],
            "n": entry["n"],
            "folds": entry.get("folds"),
            "group": entry.get("group"),
            "seeds": entry.get("seeds"),
            "reference": reference,
            "labels": sorted({label for r in rows for label in r["per_class_f1"]}),
            "polar": scoring["polar"],
            "significance": test,
            "rows": rows,
            "per_article": _per_article(entry),
            "confidence": _confidence_rows(entry, [r["model"] for r in rows]),
        }
    environment = run.environment
    return {
        "run": run.name,
        "name": info["name"],
        "description": info.get("description", ""),
        "finished_at": info["finished_at"],
        "duration_s": info["duration_s"],
        "resumed": {k: v for k, v in info["resumed"].items() if k != "taken"} if info.get("resumed") else None,
        "commit": (environment.get("git") or {}).get("commit"),
        "config_file": info.get("config_file"),
        "overrides": info.get("overrides", {}),
        "seeds": config["experiment"]["seeds"],
        "bootstrap": scoring["bootstrap"],
        "confidence": scoring["confidence"],
        "machine": f"{environment.get('cpu', '?')}, {environment.get('usable_cpus', '?')} CPU(s)",
        "evaluations": boards,
        "curves": curves,
    }


def _curve_board(entry: dict[str, Any], metrics: dict[str, Any], timings: dict[str, Any],
                 scoring: dict[str, Any]) -> dict[str, Any]:
    """One few-shot evaluation as data: per model the learning curve and, when the evaluation
    names a ``reference``, that evaluation's macro-F1 of the same model."""
    reference = entry.get("reference")
    ref_models = metrics["evaluations"].get(reference, {}).get("models", {}) if reference else {}
    models = {}
    for model, result in entry["models"].items():
        summary = result["summary"]
        ref = ref_models.get(model, {}).get("summary", {}).get("macro_f1", {}).get("mean")
        timing = list(timings[model].values())
        models[model] = {"points": summary["points"], "per_group": summary["per_group"], "reference": ref,
                         "seeds": summary["seeds"], "groups": summary["groups"], "band_over": summary["band_over"],
                         "train_s": float(np.mean([t["train_s"] for t in timing])),
                         "adapt_s": float(np.mean([t.get("adapt_s", 0.0) for t in timing]))}
    return {"protocol": "few-shot", "data": entry["data"], "group": entry["group"], "base": entry["base"],
            "shots": entry["shots"], "reference": reference, "confidence": scoring["confidence"], "models": models}


def curve_image(curve: dict[str, Any], evaluation: str) -> bytes:
    """The learning curves of one few-shot evaluation as PNG bytes."""
    from .plots import learning_curve_png

    lines = {model: ([p["shots"] for p in m["points"]], [p["mean"] for p in m["points"]],
                     [(p["band"] or [None, None])[0] for p in m["points"]],
                     [(p["band"] or [None, None])[1] for p in m["points"]]) for model, m in curve["models"].items()}
    references = {model: m["reference"] for model, m in curve["models"].items()}
    with tempfile.TemporaryDirectory() as tmp:
        return learning_curve_png(lines, Path(tmp) / "curve.png", references=references,
                                  title=f"few-shot learning curve · {evaluation}").read_bytes()


def _curve_lines(curve: dict[str, Any]) -> list[str]:
    """The learning curves of one few-shot evaluation as Markdown tables."""
    ci = f"{round(curve['confidence'] * 100)}%"
    shots = curve["shots"]
    lines = ["| model | " + " | ".join(f"{k} shots" for k in shots) + " | reference | adapt s |",
             "|---|" + "---:|" * (len(shots) + 2)]
    for model, m in curve["models"].items():
        cells = []
        for p in m["points"]:
            band = f" [{p['band'][0]:.3f}, {p['band'][1]:.3f}]" if p["band"] else ""
            cells.append(f"{p['mean']:.3f}{band}")
        ref = _num(m["reference"])
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {ref} | {m['adapt_s']:.1f} |")
    lines.append("")
    first = next(iter(curve["models"].values()))
    lines.append(f"Mean macro-F1 over {first['groups']} held-out {curve['group']} value(s) × {first['seeds']} seed(s); "
                 f"[{ci} band]: t-interval over {first['band_over']} (each {curve['group']}'s scores averaged over "
                 "seeds first). Each number of shots is scored on the same remaining comments of the held-out group "
                 "within a seed; the shots are nested (a smaller set is part of every larger one)."
                 + (f" Reference: the model's macro-F1 on the `{curve['reference']}` evaluation." if curve["reference"]
                    else ""))
    lines.append("")
    for model, m in curve["models"].items():
        lines += [f"Per {curve['group']}, {model}:", "",
                  f"| {curve['group']} | " + " | ".join(str(k) for k in shots) + " |",
                  "|---|" + "---:|" * len(shots)]
        for group, scores in m["per_group"].items():
            lines.append(f"| {group} | " + " | ".join(f"{scores[str(k)]:.3f}" for k in shots) + " |")
        lines.append("")
    return lines


def _compare(run: Run, evaluation: str, model: str, reference: str, test: str, n_resamples: int) -> dict[str, Any]:
    from .significance import mcnemar, paired_bootstrap

    gold, ids, preds = run.prediction_lists(evaluation, model)
    ref_gold, ref_ids, ref_preds = run.prediction_lists(evaluation, reference)
    if ids != ref_ids:  # cannot happen within one evaluation; guards hand-edited folders
        raise OutputError(f"{run.folder}: '{model}' and '{reference}' were tested on different comments under '{evaluation}'",
                          "rerun the experiment")
    labels = sorted(set(gold) | {p for run_ in preds + ref_preds for p in run_})
    result = paired_bootstrap(gold, preds, ref_preds, labels, n_resamples=n_resamples, seed=0)
    out = {"reference": reference, "test": test, "delta": result.delta, "delta_ci": list(result.ci)}
    if test == "mcnemar":
        # one test per seed; the largest (least significant) p-value is reported
        tests = [mcnemar(gold, a, b) for a, b in zip(preds, ref_preds)]
        worst = max(tests, key=lambda t: t.p_value)
        out.update(p_value=worst.p_value, a_only=worst.a_only, b_only=worst.b_only, method=worst.method)
    else:
        out.update(p_value=result.p_value, n_resamples=result.n_resamples)
    return out


def _per_article(entry: dict[str, Any]) -> dict[str, dict[str, float]]:
    """article -> model -> macro-F1 (mean over seeds), for evaluations whose data has articles."""
    table: dict[str, dict[str, float]] = {}
    for model, result in entry["models"].items():
        for article, stat in result["summary"].get("per_article_macro_f1", {}).items():
            table.setdefault(article, {})[model] = stat["mean"]
    return dict(sorted(table.items()))


# -- Markdown ------------------------------------------------------------------------------------
PROTOCOL_WORDS = {
    "fixed": "fixed split",
    "stratified-kfold": "stratified {folds}-fold cross-validation",
    "grouped-kfold": "{folds}-fold cross-validation grouped by {group}",
    "leave-one-article-out": "leave one {group} out",
}


#: the ``--review-below`` threshold the report's confidence table shows
REPORT_REVIEW_BELOW = 0.7


def _confidence_rows(entry: dict[str, Any], models: list[str]) -> list[dict[str, Any]]:
    """Per model (in leaderboard order), the calibration and the review share at
    ``REPORT_REVIEW_BELOW`` on the test comments, as means over seeds; empty for runs written
    before metrics.json had them."""
    out = []
    for model in models:
        seeds = [s["confidence"] for s in entry["models"][model]["seeds"].values() if s.get("confidence")]
        if not seeds:
            continue
        review = [next(r for r in c["review"] if r["below"] == REPORT_REVIEW_BELOW) for c in seeds]
        row = {"model": model}
        row.update({key: float(np.mean([c[key] for c in seeds])) for key in ("ece", "brier", "mean_confidence", "accuracy")})
        row.update({key: float(np.mean([r[key] for r in review])) for key in ("flagged_share", "errors_caught_share")})
        out.append(row)
    return out


def _confidence_lines(ev: dict[str, Any]) -> list[str]:
    below = f"{REPORT_REVIEW_BELOW:g}"
    lines = ["| model | ECE | Brier | mean confidence | accuracy | flagged below " + below
             + " | errors among the flagged |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in ev["confidence"]:
        lines.append(f"| {row['model']} | {row['ece']:.3f} | {row['brier']:.3f} | {row['mean_confidence']:.3f} | "
                     f"{row['accuracy']:.3f} | {row['flagged_share']:.0%} | {row['errors_caught_share']:.0%} |")
    return lines


def describe_protocol(board: dict[str, Any]) -> str:
    return PROTOCOL_WORDS[board["protocol"]].format(folds=board.get("folds"), group=board.get("group"))


def curve_file(evaluation: str) -> str:
    """The PNG file of a few-shot evaluation's learning curve, written next to the report."""
    return f"learning-curve-{evaluation}.png"


def _describe_curve(curve: dict[str, Any]) -> str:
    base = ("base model trained on the train file, each test-file " if curve["base"] == "train-file"
            else "base model trained on every other ")
    return (f"few-shot adaptation on `{curve['data']}` ({base}{curve['group']} held out in turn; "
            f"{', '.join(map(str, curve['shots']))} labelled comments)")


def _resumed_text(board: dict[str, Any]) -> str:
    """For a run continued with ``--resume``: how many folds came from the interrupted sittings."""
    resumed = board.get("resumed")
    if not resumed:
        return ""
    written = resumed.get("written") or ["?", "?"]
    return (f" · resumed: {resumed['folds']} of {resumed['of']} folds taken from checkpoints written {written[0]} "
            f"to {written[1]} (the time is the last sitting's)")


def markdown(board: dict[str, Any], *, details: bool = True) -> str:
    """The leaderboard as Markdown: one table per evaluation, then (with ``details``) the
    per-article scores and the notes on how every number was computed."""
    lines = [f"# Leaderboard: {board['name']}", ""]
    if board["description"]:
        lines += [board["description"], ""]
    commit = (board["commit"] or "unknown")[:10]
    lines += [f"Run `{board['run']}` · commit `{commit}` · finished {board['finished_at']} · "
              f"{_seeds_text(board['seeds'])} · {board['duration_s'] / 60:.1f} min on {board['machine']}"
              f"{_resumed_text(board)}", ""]
    for evaluation, ev in board["evaluations"].items():
        lines += [f"## {evaluation}: {describe_protocol(ev)} on `{ev['data']}` ({ev['n']} test comments"
                  f"{_own_seeds(ev, board)})", ""]
        lines += _table_lines(ev, board)
        lines.append("")
    for evaluation, curve in board.get("curves", {}).items():
        lines += [f"## {evaluation}: {_describe_curve(curve)}", ""]
        lines += _curve_lines(curve)
        lines += [f"![learning curve]({curve_file(evaluation)})", ""]
    if details:
        for evaluation, ev in board["evaluations"].items():
            if len(ev["per_article"]) > 1:
                lines += [f"### Macro-F1 per article: {evaluation}", ""]
                models = [r["model"] for r in ev["rows"]]
                lines.append("| article | " + " | ".join(models) + " |")
                lines.append("|---|" + "---:|" * len(models))
                for article, scores in ev["per_article"].items():
                    lines.append(f"| {article} | " + " | ".join(_num(scores.get(m)) for m in models) + " |")
                lines.append("")
        for evaluation, ev in board["evaluations"].items():
            if ev.get("confidence"):
                lines += [f"### Confidence on the test comments: {evaluation}", ""] + _confidence_lines(ev) + [""]
    lines += _notes(board, confidence=details)  # the confidence tables are among the details
    return "\n".join(lines).rstrip() + "\n"


def _table_lines(ev: dict[str, Any], board: dict[str, Any]) -> list[str]:
    labels = ev["labels"]
    ci_word = f"{round(board['confidence'] * 100)}% CI"
    head = ["#", "model", f"macro-F1 [{ci_word}]"]
    if ev["polar"]:
        head.append("F_avg")
    head += [f"F1 {label}" for label in labels] + ["accuracy"]
    if ev["protocol"] != "fixed":
        head.append("fold macro-F1")
    head += ["train s", "rows/s", f"Δ vs {ev['reference']}", "p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if i != 1 else "---" for i in range(len(head))) + "|"]
    for rank, row in enumerate(ev["rows"], start=1):
        cells = [str(rank), row["model"], _f1_cell(row)]
        if ev["polar"]:
            cells.append(_num(row["f_avg"], row["f_avg_std"] if row["seeds"] > 1 else None))
        cells += [_num(row["per_class_f1"].get(label)) for label in labels]
        cells.append(_num(row["accuracy"]))
        if ev["protocol"] != "fixed":
            fold = row["fold_macro_f1"]
            cells.append(_num(fold["mean"], fold["std"]) if fold else "–")
        cells.append(f"{row['train_s']:.1f}")
        cells.append(f"{row['rows_per_s']:,.0f}" if row["rows_per_s"] else "–")
        vs = row["vs_reference"]
        if vs is None:
            cells += ["(reference)", "–"]
        else:
            star = " *" if vs["p_value"] < ALPHA else ""
            cells += [f"{vs['delta']:+.3f}", f"{_p(vs['p_value'])}{star}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _notes(board: dict[str, Any], *, confidence: bool = True) -> list[str]:
    tests = {ev["significance"] for ev in board["evaluations"].values()}
    ci = f"{round(board['confidence'] * 100)}%"
    notes = [
        "Notes:",
        f"- macro-F1: mean over {_seeds_text(board['seeds'])}" + (" (± sample std over seeds)" if len(board["seeds"]) > 1 else "")
        + f"; [{ci} CI]: percentile bootstrap over test comments ({board['bootstrap']} resamples)"
        + (" of the seed-averaged score." if len(board["seeds"]) > 1 else "."),
    ]
    if any(ev["protocol"] != "fixed" for ev in board["evaluations"].values()):
        notes.append("- Cross-validation protocols score the pooled out-of-fold predictions (every comment is predicted "
                     "once per seed); the fold column is the mean ± std of the per-fold scores.")
    if "paired-bootstrap" in tests:
        notes.append("- p: two-sided paired bootstrap test of the macro-F1 difference to the best baseline "
                     f"(same resamples for both models); * p < {ALPHA}, not corrected for multiple comparisons.")
    if "mcnemar" in tests:
        notes.append("- p: McNemar's test (exact below 25 discordant comments) against the best baseline, the largest "
                     f"p-value over seeds; it tests accuracy, Δ is the macro-F1 difference; * p < {ALPHA}.")
    notes.append("- train s: training seconds per seed (all folds); rows/s: inference throughput on the test comments.")
    if confidence and any(ev.get("confidence") for ev in board["evaluations"].values()):
        notes.append(f"- Confidence: ECE (top label, {ECE_BINS} bins) and Brier score of the predicted probabilities, means "
                     "over seeds; flagged below " + f"{REPORT_REVIEW_BELOW:g}" + ": the share of comments `stance predict "
                     f"--review-below {REPORT_REVIEW_BELOW:g}` would send to a moderator, and the share of the model's "
                     "errors among them.")
    reproduce = f"stance experiment run {board['config_file']}" if board.get("config_file") else "stance experiment run CONFIG"
    for key, value in (board.get("overrides") or {}).items():
        reproduce += f" --{key} {value}"
    notes.append(f"- Reproduce: `{reproduce}`.")
    return notes


def _own_seeds(ev: dict[str, Any], board: dict[str, Any]) -> str:
    """``"; 1 seed (0)"`` for an evaluation that runs seeds of its own, else nothing."""
    seeds = ev.get("seeds")
    return f"; {_seeds_text(seeds)}" if seeds and list(seeds) != list(board["seeds"]) else ""


def _f1_cell(row: dict[str, Any]) -> str:
    text = _num(row["macro_f1"], row["macro_f1_std"] if row["seeds"] > 1 else None)
    ci = row["macro_f1_ci"]
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def _num(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _seeds_text(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} seed" + ("s" if len(seeds) != 1 else "") + f" ({', '.join(map(str, seeds))})"


# -- HTML ----------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.92rem}
th,td{border-bottom:1px solid #ddd;padding:0.3rem 0.6rem;text-align:right}
th:nth-child(2),td:nth-child(2){text-align:left}
th{background:#f4f4f4}
code{background:#f4f4f4;padding:0 0.2rem}
.figures{display:flex;flex-wrap:wrap;gap:1rem}
.figures figure{margin:0}
figcaption{font-size:0.85rem;color:#555;text-align:center}
.meta,.notes{color:#555;font-size:0.9rem}
"""


def html_page(board: dict[str, Any], run: Run) -> str:
    """A self-contained HTML page: the tables of :func:`markdown` plus the per-article chart and
    the confusion matrices, as base64-embedded PNG images."""
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Leaderboard: {_e(board['name'])}"
             f"</title><style>{_CSS}</style></head><body>", f"<h1>Leaderboard: {_e(board['name'])}</h1>"]
    if board["description"]:
        parts.append(f"<p>{_e(board['description'])}</p>")
    commit = (board["commit"] or "unknown")[:10]
    parts.append(f"<p class=\"meta\">Run <code>{_e(board['run'])}</code> · commit <code>{_e(commit)}</code> · finished "
                 f"{_e(board['finished_at'])} · {_e(_seeds_text(board['seeds']))} · {board['duration_s'] / 60:.1f} min on "
                 f"{_e(board['machine'])}{_e(_resumed_text(board))}</p>")
    for evaluation, ev in board["evaluations"].items():
        parts.append(f"<h2>{_e(evaluation)}: {_e(describe_protocol(ev))} on <code>{_e(ev['data'])}</code> "
                     f"({ev['n']} test comments{_e(_own_seeds(ev, board))})</h2>")
        parts.append(_markdown_table_html(_table_lines(ev, board)))
        if len(ev["per_article"]) > 1:
            chart = article_chart(run, evaluation)
            parts.append(f"<h3>Macro-F1 per article</h3>{_img(chart, f'macro-F1 per article, {evaluation}')}")
        if ev.get("confidence"):
            parts.append(f"<h3>Confidence on the test comments</h3>{_markdown_table_html(_confidence_lines(ev))}")
        figures = []
        for row in ev["rows"]:
            png = confusion_image(run, evaluation, row["model"])
            figures.append(f"<figure>{_img(png, 'confusion matrix of ' + row['model'])}"
                           f"<figcaption>{_e(row['model'])}</figcaption></figure>")
        seeds = len(board["seeds"])
        parts.append(f"<h3>Confusion matrices</h3><p class=\"meta\">rows: gold label, columns: predicted"
                     f"{f'; counts summed over {seeds} seeds' if seeds > 1 else ''}</p>"
                     f"<div class=\"figures\">{''.join(figures)}</div>")
    for evaluation, curve in board.get("curves", {}).items():
        parts.append(f"<h2>{_e(evaluation)}: {_inline_code(_describe_curve(curve))}</h2>")
        lines = _curve_lines(curve)
        tables, text = [], []
        for line in lines + [""]:
            if line.startswith("|"):
                text.append(line)
            elif text:
                tables.append(_markdown_table_html(text))
                text = []
            elif line:
                tables.append(f"<p>{_inline_code(line)}</p>")
        parts.append("".join(tables))
        parts.append(_img(curve_image(curve, evaluation), f"few-shot learning curve, {evaluation}"))
    notes = "".join(f"<li>{_inline_code(n[2:])}</li>" for n in _notes(board)[1:])
    parts.append(f"<h2>Notes</h2><ul class=\"notes\">{notes}</ul></body></html>")
    return "\n".join(parts) + "\n"


def _markdown_table_html(lines: list[str]) -> str:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if not line.startswith("|--")]
    head, body = rows[0], rows[1:]
    out = ["<table><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</tbody></table>"


def _inline_code(text: str) -> str:
    pieces = text.split("`")
    return "".join(f"<code>{_e(p)}</code>" if i % 2 else _e(p) for i, p in enumerate(pieces))


def _img(png: bytes, alt: str) -> str:
    png = _compact_png(png)
    return f"<img alt=\"{_e(alt)}\" src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">"


def _compact_png(png: bytes, colors: int = 128) -> bytes:
    """A palette PNG of the same picture, about a third of the size, so that the page stays small."""
    import io

    from PIL import Image  # installed with matplotlib

    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=colors).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue() if buffer.tell() < len(png) else png


def _e(text: Any) -> str:
    return html.escape(str(text))


# -- writing -------------------------------------------------------------------------------------
def write_report(run: Run | str | Path, out: str | Path | None = None, *, overwrite: bool = True,
                 board: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` for ``run`` into ``out`` (default: the run folder)."""
    run = load_run(run) if not isinstance(run, Run) else run
    out = Path(out) if out is not None else run.folder
    paths = {name: out / name for name in REPORT_FILES}
    _refuse_clobber(paths.values(), overwrite)
    board = board or leaderboard(run)
    out.mkdir(parents=True, exist_ok=True)
    paths["report.md"].write_text(markdown(board), encoding="utf-8")
    paths["report.html"].write_text(html_page(board, run), encoding="utf-8")
    for evaluation, curve in board.get("curves", {}).items():
        paths[curve_file(evaluation)] = out / curve_file(evaluation)
        paths[curve_file(evaluation)].write_bytes(curve_image(curve, evaluation))
    return paths


def export_results(run: Run | str | Path, out: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Publishable results of a run in ``out``: ``report.md``, ``report.html`` and ``metrics.json``
    (leaderboard, metrics, timings, resolved config, environment): small files, no weights, no
    predictions. This is how ``experiments/results/<name>/`` is made."""
    run = load_run(run) if not isinstance(run, Run) else run
    out = Path(out)
    if out.resolve() == run.folder.resolve():
        return write_report(run, out, overwrite=True)
    metrics_path = out / "metrics.json"
    _refuse_clobber([out / name for name in REPORT_FILES] + [metrics_path], overwrite)
    board = leaderboard(run)
    paths = write_report(run, out, overwrite=True, board=board)
    results = {"leaderboard": board, "run": run.info, "config": run.config, "environment": run.environment,
               "metrics": run.metrics, "timings": run.timings}
    metrics_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**paths, "metrics.json": metrics_path}


def _refuse_clobber(paths, overwrite: bool) -> None:
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise OutputError(f"{path}: already exists", "choose another --out or pass --overwrite")


# -- comparing two runs --------------------------------------------------------------------------
def compare_runs(run_a: Run | str | Path, run_b: Run | str | Path, *, n_resamples: int = 1000) -> dict[str, Any]:
    """Scores of two runs side by side, per evaluation and model, with what changed between them.

    Where both runs tested the same comments (same ids, same order) the difference gets a
    paired bootstrap p-value; otherwise only the two scores are shown.
    """
    from .significance import paired_bootstrap

    run_a = load_run(run_a) if not isinstance(run_a, Run) else run_a
    run_b = load_run(run_b) if not isinstance(run_b, Run) else run_b
    metrics_a, metrics_b = run_a.metrics["evaluations"], run_b.metrics["evaluations"]
    rows = []
    for evaluation in list(dict.fromkeys([*metrics_a, *metrics_b])):
        models_a = metrics_a.get(evaluation, {}).get("models", {})
        models_b = metrics_b.get(evaluation, {}).get("models", {})
        if "few-shot" in (metrics_a.get(evaluation, {}).get("protocol"), metrics_b.get(evaluation, {}).get("protocol")):
            continue  # a learning curve, not one score: compare the reports' curve tables
        for model in list(dict.fromkeys([*models_a, *models_b])):
            a = models_a.get(model, {}).get("summary")
            b = models_b.get(model, {}).get("summary")
            row = {"evaluation": evaluation, "model": model,
                   "a": a["macro_f1"]["mean"] if a else None, "b": b["macro_f1"]["mean"] if b else None,
                   "delta": None, "p_value": None, "paired": False}
            if a and b:
                row["delta"] = row["b"] - row["a"]
                gold_a, ids_a, preds_a = run_a.prediction_lists(evaluation, model)
                gold_b, ids_b, preds_b = run_b.prediction_lists(evaluation, model)
                if ids_a == ids_b and gold_a == gold_b:
                    labels = sorted(set(gold_a) | {p for r in preds_a + preds_b for p in r})
                    test = paired_bootstrap(gold_a, preds_b, preds_a, labels, n_resamples=n_resamples, seed=0)
                    row.update(p_value=test.p_value, paired=True)
            rows.append(row)
    return {
        "a": run_a.name,
        "b": run_b.name,
        "rows": rows,
        "config_changes": _changes(_flatten(run_a.config), _flatten(run_b.config)),
        "environment_changes": _changes(_flatten(_env_view(run_a.environment)), _flatten(_env_view(run_b.environment))),
        "data_changes": _changes(_flatten({k: v["sha256"] for k, v in run_a.info["data"].items()}),
                                 _flatten({k: v["sha256"] for k, v in run_b.info["data"].items()})),
    }


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """:func:`compare_runs` as Markdown."""
    a, b = comparison["a"], comparison["b"]
    lines = [f"# {b} vs {a}", "", "Macro-F1 (mean over seeds); Δ = B − A; p: paired bootstrap where both runs "
             "tested the same comments.", "",
             f"| evaluation | model | A: {a} | B: {b} | Δ | p |", "|---|---|---:|---:|---:|---:|"]
    for row in comparison["rows"]:
        delta = f"{row['delta']:+.3f}" if row["delta"] is not None else "–"
        p = (_p(row["p_value"]) + (" *" if row["p_value"] < ALPHA else "")) if row["p_value"] is not None else "–"
        lines.append(f"| {row['evaluation']} | {row['model']} | {_num(row['a'])} | {_num(row['b'])} | {delta} | {p} |")
    for title, key in (("Config changes", "config_changes"), ("Data changes", "data_changes"),
                       ("Environment changes", "environment_changes")):
        changes = comparison[key]
        lines += ["", f"## {title}", ""]
        if not changes:
            lines.append("none")
        for change in changes:
            lines.append(f"- `{change['key']}`: {_short(change['a'])} → {_short(change['b'])}")
    return "\n".join(lines) + "\n"


def _env_view(environment: dict[str, Any]) -> dict[str, Any]:
    return {"python": environment.get("python"), "cpu": environment.get("cpu"), "cpus": environment.get("usable_cpus"),
            "packages": environment.get("packages", {}), "commit": (environment.get("git") or {}).get("commit"),
            "source_sha256": environment.get("source_sha256")}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "(absent)"
    return text if len(text) <= 40 else text[:18] + "…" + text[-18:]


# -- error analysis (the notebook's calls) -------------------------------------------------------
def misclassified(run: Run | str | Path, evaluation: str, model: str, seed: int | None = None) -> pd.DataFrame:
    """The comments ``model`` got wrong under ``evaluation`` (first seed unless ``seed``),
    most confident mistakes first."""
    run = load_run(run) if not isinstance(run, Run) else run
    seed = run.seeds(evaluation, model)[0] if seed is None else seed
    table = run.predictions(evaluation, model, seed)
    wrong = table[~table["correct"]].copy()
    proba = [c for c in wrong.columns if c.startswith("p_")]
    wrong["confidence"] = wrong[proba].max(axis=1) if proba else np.nan
    columns = [c for c in ("id", "article_id", "target", "gold", "predicted", "confidence", "phenomena", "text")
               if c in wrong.columns]
    return wrong.sort_values("confidence", ascending=False)[columns].reset_index(drop=True)


def errors_by(predictions: pd.DataFrame, column: str) -> pd.DataFrame:
    """Comments, errors and error rate per value of ``column`` (a list column such as
    ``phenomena`` counts a comment once under each of its values; no value shows as "(none)").

    >>> frame = pd.DataFrame({"correct": [True, False, True], "phenomena": [["irony"], ["irony", "negation"], []]})
    >>> errors_by(frame, "phenomena").values.tolist()
    [['negation', 1, 1, 1.0], ['irony', 2, 1, 0.5], ['(none)', 1, 0, 0.0]]
    """
    if column not in predictions.columns:
        raise KeyError(f"no column '{column}' in the predictions (columns: {', '.join(predictions.columns)})")
    frame = predictions[[column, "correct"]].copy()
    frame[column] = frame[column].map(lambda v: (list(v) or ["(none)"]) if isinstance(v, (list, tuple, np.ndarray))
                                      else ("(none)" if v is None or v != v else v))
    frame = frame.explode(column)
    grouped = frame.groupby(column, sort=True)["correct"].agg(comments="size", errors=lambda s: int((~s).sum()))
    grouped["error_rate"] = grouped["errors"] / grouped["comments"]
    grouped = grouped.reset_index().sort_values(["error_rate", "comments"], ascending=[False, False], kind="stable")
    grouped["comments"] = grouped["comments"].astype(int)
    grouped["errors"] = grouped["errors"].astype(int)
    return grouped.reset_index(drop=True)


def article_scores(run: Run | str | Path, evaluation: str) -> pd.DataFrame:
    """Macro-F1 per article (rows) and model (columns), mean over seeds."""
    run = load_run(run) if not isinstance(run, Run) else run
    per_article = _per_article(run.metrics["evaluations"][evaluation])
    return pd.DataFrame(per_article).T.rename_axis("article")


def leaderboard_frame(board: dict[str, Any], evaluation: str) -> pd.DataFrame:
    """One evaluation's leaderboard as a DataFrame (for notebooks)."""
    rows = []
    for row in board["evaluations"][evaluation]["rows"]:
        vs = row["vs_reference"] or {}
        rows.append({"model": row["model"], "macro_f1": row["macro_f1"], "macro_f1_std": row["macro_f1_std"],
                     "ci_low": (row["macro_f1_ci"] or [None, None])[0], "ci_high": (row["macro_f1_ci"] or [None, None])[1],
                     "f_avg": row["f_avg"], "accuracy": row["accuracy"],
                     **{f"f1_{k}": v for k, v in row["per_class_f1"].items()},
                     "train_s": row["train_s"], "rows_per_s": row["rows_per_s"],
                     "delta": vs.get("delta"), "p_value": vs.get("p_value")})
    return pd.DataFrame(rows).set_index("model")


def confusion_image(run: Run | str | Path, evaluation: str, model: str) -> bytes:
    """The confusion matrix of ``model`` (summed over seeds) as PNG bytes, drawn by
    :func:`comment_stance.plots.confusion_png`."""
    from .plots import confusion_png

    run = load_run(run) if not isinstance(run, Run) else run
    seeds = run.metrics["evaluations"][evaluation]["models"][model]["seeds"]
    first = next(iter(seeds.values()))["confusion"]
    matrix = np.sum([s["confusion"]["matrix"] for s in seeds.values()], axis=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = confusion_png(matrix.tolist(), first["labels"], Path(tmp) / "confusion.png", title=f"{model} · {evaluation}")
        return path.read_bytes()


def article_chart(run: Run | str | Path, evaluation: str) -> bytes:
    """Grouped bars of macro-F1 per article and model as PNG bytes."""
    run = load_run(run) if not isinstance(run, Run) else run
    scores = article_scores(run, evaluation)
    with tempfile.TemporaryDirectory() as tmp:
        return article_scores_png(scores, Path(tmp) / "articles.png", title=f"macro-F1 per article · {evaluation}").read_bytes()
