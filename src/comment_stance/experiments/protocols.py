"""The data of each evaluation protocol and its division into folds."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

@dataclass
class Fold:
    """One train/test division: ``name`` is 'test' (fixed), 'fold-3' or the held-out article."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    dev: pd.DataFrame | None = None


@dataclass
class EvaluationData:
    """The comments of one evaluation and how to divide them into folds."""

    name: str
    spec: dict[str, Any]
    table: pd.DataFrame  # every comment that is ever tested, in output order
    context: list[pd.DataFrame]  # where reply parents are looked up
    fixed: Any = None  # the Dataset, for the fixed protocol
    hashes: dict[str, str] = field(default_factory=dict)

    def folds(self, seed: int) -> list[Fold]:
        """The folds for ``seed`` (stratified k-fold shuffles with it; the others do not depend on it)."""
        from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

        protocol = self.spec["protocol"]
        if protocol == "fixed":
            dev = self.fixed.dev if self.spec["test_split"] != "dev" else None
            return [Fold(self.spec["test_split"], self.fixed.train, self.table, dev)]
        labels = self.table["label"].to_numpy()
        if protocol == "stratified-kfold":
            splitter = StratifiedKFold(n_splits=self.spec["folds"], shuffle=True, random_state=seed)
            parts = splitter.split(self.table, labels)
            names = [f"fold-{i + 1}" for i in range(self.spec["folds"])]
        else:
            groups = self.table[self.spec["group"]].to_numpy()
            if protocol == "grouped-kfold":
                parts = GroupKFold(n_splits=self.spec["folds"]).split(self.table, labels, groups)
                names = [f"fold-{i + 1}" for i in range(self.spec["folds"])]
            else:
                parts = list(LeaveOneGroupOut().split(self.table, labels, groups))
                names = [str(groups[test[0]]) for _, test in parts]
        return [Fold(name, self.table.iloc[tr].reset_index(drop=True), self.table.iloc[te])
                for name, (tr, te) in zip(names, parts)]


    def few_shot_groups(self) -> list[FewShotGroup]:
        """The held-out groups of the few-shot protocol, each with the data its base model learns from."""
        group = self.spec["group"]
        if self.spec["base"] == "train-file":
            base = (self.fixed.train, self.fixed.dev)
            return [FewShotGroup(str(g), base[0], base[1], rows.reset_index(drop=True))
                    for g, rows in self.table.groupby(group, sort=True)]
        return [FewShotGroup(str(g), self.table[self.table[group] != g].reset_index(drop=True), None,
                             rows.reset_index(drop=True))
                for g, rows in self.table.groupby(group, sort=True)]


@dataclass
class FewShotGroup:
    """One new pact of the few-shot protocol: the base model's data and the held-out comments."""

    name: str
    train: pd.DataFrame
    dev: pd.DataFrame | None
    heldout: pd.DataFrame


def draw_shots(heldout: pd.DataFrame, shots: list[int], seed: int, group: str) -> tuple[np.ndarray, np.ndarray]:
    """The labelled pool and the evaluation rows of one held-out group under ``seed``.

    Returns ``(pool, evaluation)``, row positions in ``heldout``: ``pool`` holds ``max(shots)``
    comments in an order whose every prefix is close to the group's label shares (each label's
    comments shuffled, then interleaved by their within-label rank), so that ``k`` shots are
    ``pool[:k]``: the 16 comments are among the 32, and every ``k`` of a seed is evaluated on the
    same ``evaluation`` rows (the rest of the group), which keeps the curve comparable.

    >>> table = pd.DataFrame({"label": ["a"] * 6 + ["b"] * 3})
    >>> pool, rest = draw_shots(table, [0, 3], seed=0, group="g")
    >>> sorted(table["label"].iloc[pool]), len(rest)
    (['a', 'a', 'b'], 6)
    """
    rng = np.random.default_rng([seed, zlib.crc32(group.encode("utf-8"))])
    labels = heldout["label"].astype(str).to_numpy()
    keys = np.zeros(len(labels))
    for label in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        # rank r of n: (r + jitter) / n spreads the label evenly through the order
        keys[rows] = (np.arange(len(rows)) + rng.uniform(0.0, 1.0, len(rows))) / len(rows)
    order = np.argsort(keys, kind="stable")
    size = max(shots)
    return order[:size], np.sort(order[size:])


def load_evaluation_data(name: str, spec: dict[str, Any]) -> EvaluationData:
    """Read the data of one evaluation and check that its protocol can run on it."""
    from ..data import SPLITS, load_dataset, table_sha256

    dataset = load_dataset(spec["data"])
    present = {s: getattr(dataset, s) for s in SPLITS if getattr(dataset, s) is not None}
    hashes = {s: table_sha256(t) for s, t in present.items()}
    where = f"evaluations.{name}"
    if spec["protocol"] == "few-shot":
        return _few_shot_data(name, spec, dataset, present, hashes)
    if spec["protocol"] == "fixed":
        if dataset.train is None or len(present) < 2:
            raise DataError(f"{spec['data']}: the fixed protocol ({where}) needs a train and a {spec['test_split']} file",
                            "give a dataset folder, or use protocol = \"stratified-kfold\" on one file")
        test = dataset.split(spec["test_split"])
        context = [t for s, t in present.items() if s != spec["test_split"]]
        return EvaluationData(name, spec, test.reset_index(drop=True), context, dataset, hashes)
    pooled = _pool(spec, present, where)
    group = spec.get("group")
    if group is not None:
        if group not in pooled.columns or pooled[group].isna().any():
            raise DataError(f"{spec['data']}: {where} groups by '{group}', but "
                            + ("there is no such column" if group not in pooled.columns else "some comments have none"),
                            f"set {where}.group to a column every comment has (columns: {', '.join(pooled.columns)})")
        n_groups = pooled[group].nunique()
        needed = spec.get("folds", 2)
        if n_groups < needed:
            raise DataError(f"{spec['data']}: {where} needs {needed} values of '{group}', found {n_groups}",
                            f"lower {where}.folds or use protocol = \"stratified-kfold\"")
    elif spec["protocol"] == "stratified-kfold":
        smallest = pooled["label"].value_counts().min()
        if smallest < spec["folds"]:
            raise DataError(f"{spec['data']}: a label has {smallest} comments, fewer than {where}.folds = {spec['folds']}",
                            f"lower {where}.folds")
    return EvaluationData(name, spec, pooled, [pooled], None, hashes)


def _pool(spec: dict[str, Any], present: dict[str, pd.DataFrame], where: str) -> pd.DataFrame:
    """Every split of the dataset in one table (a ``split`` column says where each row came from);
    ids must be unique across the splits."""
    frames = [t.assign(split=s) if "split" not in t.columns else t for s, t in present.items()]
    pooled = pd.concat(frames, ignore_index=True)
    duplicated = pooled["id"][pooled["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{spec['data']}: id '{duplicated.iloc[0]}' occurs in more than one split",
                        f"{where} pools all splits; give every comment a unique id")
    return pooled


#: the fewest comments of a held-out group left to evaluate on after the largest number of shots
MIN_EVALUATION_ROWS = 10


def _few_shot_data(name: str, spec: dict[str, Any], dataset, present: dict[str, pd.DataFrame],
                   hashes: dict[str, str]) -> EvaluationData:
    where = f"evaluations.{name}"
    group = spec["group"]
    if spec["base"] == "train-file":
        if dataset.train is None or dataset.test is None:
            raise DataError(f"{spec['data']}: {where} (few-shot, base = \"train-file\") needs a train and a test file",
                            "give a dataset folder whose test file holds the new pacts, or set base = \"other-groups\"")
        heldout = dataset.test.reset_index(drop=True)
        context = list(present.values())
    else:
        heldout = _pool(spec, present, where)
        context = [heldout]
    if group not in heldout.columns or heldout[group].isna().any():
        raise DataError(f"{spec['data']}: {where} holds out each '{group}', but "
                        + ("there is no such column" if group not in heldout.columns else "some comments have none"),
                        f"set {where}.group to a column every comment has (columns: {', '.join(heldout.columns)})")
    sizes = heldout[group].astype(str).value_counts()
    if spec["base"] == "other-groups" and len(sizes) < 2:
        raise DataError(f"{spec['data']}: {where} needs 2 or more values of '{group}', found {len(sizes)}",
                        "give data with several articles, or use base = \"train-file\"")
    smallest = sizes.sort_index().idxmin()
    need = max(spec["shots"]) + MIN_EVALUATION_ROWS
    if sizes[smallest] < need:
        raise DataError(f"{spec['data']}: {where}: {group} '{smallest}' has {sizes[smallest]} comments, too few for "
                        f"{max(spec['shots'])} shots and {MIN_EVALUATION_ROWS} left to evaluate on",
                        f"lower the largest value of {where}.shots to {max(0, sizes[smallest] - MIN_EVALUATION_ROWS)} or less")
    return EvaluationData(name, spec, heldout, context, dataset, hashes)
