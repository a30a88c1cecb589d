"""The data of each evaluation protocol and its division into folds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def load_evaluation_data(name: str, spec: dict[str, Any]) -> EvaluationData:
    """Read the data of one evaluation and check that its protocol can run on it."""
    from ..data import SPLITS, load_dataset, table_sha256

    dataset = load_dataset(spec["data"])
    present = {s: getattr(dataset, s) for s in SPLITS if getattr(dataset, s) is not None}
    hashes = {s: table_sha256(t) for s, t in present.items()}
    where = f"evaluations.{name}"
    if spec["protocol"] == "fixed":
        if dataset.train is None or len(present) < 2:
            raise DataError(f"{spec['data']}: the fixed protocol ({where}) needs a train and a {spec['test_split']} file",
                            "give a dataset folder, or use protocol = \"stratified-kfold\" on one file")
        test = dataset.split(spec["test_split"])
        context = [t for s, t in present.items() if s != spec["test_split"]]
        return EvaluationData(name, spec, test.reset_index(drop=True), context, dataset, hashes)
    frames = [t.assign(split=s) if "split" not in t.columns else t for s, t in present.items()]
    pooled = pd.concat(frames, ignore_index=True)
    duplicated = pooled["id"][pooled["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{spec['data']}: id '{duplicated.iloc[0]}' occurs in more than one split",
                        f"{where} pools all splits; give every comment a unique id")
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
