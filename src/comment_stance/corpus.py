"""Describing and checking a comment corpus: statistics, duplicates, balance, threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import SPLITS, load_dataset

#: the label of comments that take no stance (see data/GUIDELINES.md and comment_stance.offtopic)
OFF_TOPIC = "off_topic"


def _words(texts: pd.Series) -> np.ndarray:
    return texts.str.split().str.len().to_numpy()


def table_stats(table: pd.DataFrame) -> dict[str, Any]:
    words = _words(table["text"])
    replies = table["parent_id"].notna().sum() if "parent_id" in table.columns else 0
    return {
        "rows": int(len(table)),
        "label_counts": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
        "targets": int(table["target"].nunique()) if "target" in table.columns else 0,
        "reply_share": float(replies / len(table)) if len(table) else 0.0,
        "median_words": float(np.median(words)) if len(words) else 0.0,
        "min_words": int(words.min()) if len(words) else 0,
        "max_words": int(words.max()) if len(words) else 0,
    }


def dataset_stats(path: str | Path | None = None) -> dict[str, Any]:
    """Rows, label counts, targets, reply share and lengths of each split of a dataset."""
    dataset = load_dataset(path)
    splits = {s: table_stats(getattr(dataset, s)) for s in SPLITS if getattr(dataset, s) is not None}
    labels = sorted({label for row in splits.values() for label in row["label_counts"]})
    return {"source": str(dataset.source), "labels": labels, "splits": splits}


# -- near duplicates -----------------------------------------------------------------------------

def near_duplicate_pairs(texts: list[str], threshold: float = 0.8, n: int = 5, chunk: int = 2000) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with ``i < j`` whose character ``n``-gram sets overlap by at least
    ``threshold`` (Jaccard). Texts are lower-cased and whitespace-normalized first, so exact
    duplicates score 1.0.

    Computed as sparse products of binary n-gram matrices, a block of rows at a time, so memory
    stays bounded for large corpora.

    >>> near_duplicate_pairs(["Sign the pact now!", "sign the pact now", "Nothing alike here."])
    [(0, 1, 1.0)]
    """
    from sklearn.feature_extraction.text import CountVectorizer

    norm = [" ".join(t.lower().split()).strip(" .!?") for t in texts]
    if len(norm) < 2:
        return []
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(n, n), binary=True, lowercase=False, dtype=np.int32)
    matrix = vectorizer.fit_transform([t if len(t) >= n else t.ljust(n, "\u2400") for t in norm]).tocsr()
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    pairs: list[tuple[int, int, float]] = []
    transposed = matrix.T.tocsc()
    for start in range(0, matrix.shape[0], chunk):
        block = (matrix[start : start + chunk] @ transposed).tocoo()
        for i, j, inter in zip(block.row + start, block.col, block.data):
            if j <= i:
                continue
            jaccard = inter / (sizes[i] + sizes[j] - inter)
            if jaccard >= threshold:
                pairs.append((int(i), int(j), round(float(jaccard), 4)))
    return sorted(pairs)


# -- checks --------------------------------------------------------------------------------------

@dataclass
class CheckRules:
    """Thresholds of :func:`check_corpus`. A rule whose column the data lacks is skipped."""

    max_near_duplicate_rate: float = 0.01
    near_duplicate_jaccard: float = 0.8
    min_label_share: float = 0.20
    min_per_article: int = 150
    min_reply_share: float = 0.30


@dataclass
class CheckResult:
    """Findings of :func:`check_corpus`: ``failures`` break hard rules, ``warnings`` do not."""

    stats: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _all_rows(path: str | Path | None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], str]:
    dataset = load_dataset(path)
    parts = {s: getattr(dataset, s) for s in SPLITS if getattr(dataset, s) is not None}
    table = pd.concat([p.assign(split=s) for s, p in parts.items()], ignore_index=True)
    return table, parts, str(dataset.source)


def check_corpus(path: str | Path | None = None, rules: CheckRules | None = None,
                 context: str | Path | None = None) -> CheckResult:
    """Quality checks of a labelled comment dataset (a folder of splits, or one file).

    Hard rules (failures): exact/near-duplicate rate, the share of every label, comments per
    article, reply share, ids unique across splits, replies whose parent is missing, the same text
    in train and test. Per-article label balance is reported and warned about.

    Off-topic data (every label ``off_topic``, e.g. ``data/processed/off-topic``) is a supplement to
    a stance corpus, not a corpus: the label-share, comments-per-article and reply-share rules do
    not apply to it. ``context`` names the stance corpus it goes with: replies may answer its
    comments, and a near duplicate of one of its comments counts as a duplicate.
    """
    rules = rules or CheckRules()
    table, parts, source = _all_rows(path)
    result = CheckResult(stats={"source": source, "rows": int(len(table))})
    stats = result.stats
    off_topic = set(table["label"].astype(str)) == {OFF_TOPIC}
    context_table = _all_rows(context)[0] if context is not None else None
    if off_topic:
        stats["off_topic_data"] = True

    # duplicates
    pairs = near_duplicate_pairs(table["text"].tolist(), rules.near_duplicate_jaccard)
    exact = [p for p in pairs if p[2] >= 1.0]
    in_pairs = {j for _, j, _ in pairs}  # the later comment of each pair counts as the duplicate
    stats["exact_duplicate_rate"] = len({j for _, j, _ in exact}) / len(table)
    stats["near_duplicate_rate"] = len(in_pairs) / len(table)
    stats["near_duplicate_examples"] = [
        {"a": table["id"].iloc[i], "b": table["id"].iloc[j], "jaccard": s} for i, j, s in pairs[:10]
    ]
    if stats["near_duplicate_rate"] >= rules.max_near_duplicate_rate:
        result.failures.append(
            f"near-duplicate rate {stats['near_duplicate_rate']:.2%} (char-5-gram Jaccard >= "
            f"{rules.near_duplicate_jaccard}) is not below {rules.max_near_duplicate_rate:.0%}")
    if context_table is not None:
        n = len(table)
        both = near_duplicate_pairs(table["text"].tolist() + context_table["text"].tolist(), rules.near_duplicate_jaccard)
        copied = {i for i, j, _ in both if i < n <= j}
        stats["near_duplicates_of_context"] = len(copied)
        if copied and len(copied) / n >= rules.max_near_duplicate_rate:
            result.failures.append(f"{len(copied)} comments are near duplicates of comments in {context}")

    # labels
    shares = table["label"].value_counts(normalize=True).sort_index()
    stats["label_share"] = {str(k): round(float(v), 4) for k, v in shares.items()}
    for label, share in shares.items():
        if share < rules.min_label_share and not off_topic:
            result.failures.append(f"label '{label}' is {share:.1%} of the data, below {rules.min_label_share:.0%}")

    # lengths
    words = table["text"].str.split().str.len()
    stats["length_words"] = {q: int(words.quantile(p)) for q, p in
                             (("min", 0), ("p10", 0.1), ("median", 0.5), ("p90", 0.9), ("max", 1))}
    stats["length_by_label"] = {str(k): float(v) for k, v in words.groupby(table["label"]).median().items()}

    # articles
    if "article_id" in table.columns and table["article_id"].notna().any():
        per_article = table.groupby("article_id")["label"].value_counts().unstack(fill_value=0)
        stats["per_article"] = {str(a): {str(k): int(v) for k, v in row.items()} for a, row in per_article.iterrows()}
        for article, row in per_article.iterrows():
            total = int(row.sum())
            if total < rules.min_per_article and not off_topic:
                result.failures.append(f"article '{article}' has {total} comments, fewer than {rules.min_per_article}")
            low = row[row / total < 0.10]
            for label, count in (low.items() if not off_topic else ()):
                result.warnings.append(f"article '{article}': label '{label}' is only {count / total:.0%} of its comments")

    # threads
    if "parent_id" in table.columns:
        replies = table["parent_id"].notna()
        stats["reply_share"] = float(replies.mean())
        if stats["reply_share"] < rules.min_reply_share and not off_topic:
            result.failures.append(f"reply share {stats['reply_share']:.0%} is below {rules.min_reply_share:.0%}")
        known_ids = set(table["id"]) | (set(context_table["id"]) if context_table is not None else set())
        orphans = sorted(set(table.loc[replies, "parent_id"]) - known_ids)
        if orphans:
            result.failures.append(f"{len(orphans)} replies point to a parent_id that is not in the data (e.g. '{orphans[0]}')")
        if "author" in table.columns:
            stats["authors"] = int(table["author"].nunique())

    # integrity across splits
    duplicated_ids = table["id"][table["id"].duplicated()].tolist()
    if duplicated_ids:
        result.failures.append(f"id '{duplicated_ids[0]}' occurs in more than one row or split")
    if "train" in parts and "test" in parts:
        leaked = set(parts["train"]["text"].str.strip().str.lower()) & set(parts["test"]["text"].str.strip().str.lower())
        if leaked:
            result.failures.append(f"{len(leaked)} test comment(s) also occur in train (e.g. {next(iter(leaked))[:60]!r})")
        stats["splits"] = {s: int(len(p)) for s, p in parts.items()}
    return result
