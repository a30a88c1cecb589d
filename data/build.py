"""Build the shipped corpus from its raw files.

    python data/build.py sheet --n 480 --out /tmp/annotation/sheet.jsonl   # blind sheet for the second annotator
    python data/build.py build                                             # raw -> data/processed/
    python data/build.py offtopic-sheet                                    # blind sheet: off-topic vs stance

Raw files (never edited by this script):
    data/raw/articles/<article_id>.json         one article each: id, title, target, text, ...
    data/raw/comments/<article_id>.jsonl        the comment section, labelled by its writer
    data/raw/annotation/second_pass.jsonl       blind second labels: {"id", "label"}
    data/raw/annotation/adjudication.jsonl      decisions on disagreements: {"id", "label", "note"}
    data/raw/off-topic/<article_id>.jsonl       comments with no stance toward the pact, label off_topic
    data/raw/annotation/offtopic-sheet.jsonl    blind sheet mixing off-topic and on-topic comments (ids s001...)
    data/raw/annotation/offtopic-sheet-key.jsonl      sheet id -> comment id, kept from the annotator
    data/raw/annotation/offtopic-second-pass.jsonl    blind second labels of that sheet: {"id", "label"}
    data/raw/annotation/offtopic-adjudication.jsonl   decisions on its disagreements: {"id", "label", "note"}

Processed files (what models read):
    data/processed/articles.jsonl               the articles with their targets
    data/processed/comments.jsonl               every comment, final label, both original labels
    data/processed/agreement.json               Cohen's kappa of the double-labelled sample
    data/processed/random/{train,dev,test}.jsonl           stratified 70/15/15, seed 13
    data/processed/unseen-article/{train,dev,test}.jsonl   whole articles held out for test
    data/processed/off-topic/{train,dev,test}.jsonl        off-topic comments, stratified by article
    data/processed/offtopic-agreement.json      kappa of off-topic vs not on the blind sheet
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw"
PROCESSED = HERE / "processed"
SEED = 13
#: articles whose comments appear only in the unseen-article test split: a peace agreement, a
#: police-mission agreement and a defence memorandum, three kinds of pact the training data lacks
UNSEEN_TEST_ARTICLES = ("a05", "a09", "a12")
OFF_TOPIC = "off_topic"
#: sheet id -> comment id of the blind off-topic sheet (not shown to the annotator)
OFFTOPIC_KEY = RAW / "annotation" / "offtopic-sheet-key.jsonl"
SPLIT_COLUMNS = ["id", "article_id", "target", "parent_id", "author", "created_at", "text", "label"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    articles = pd.DataFrame([json.loads(p.read_text(encoding="utf-8")) for p in sorted((RAW / "articles").glob("*.json"))])
    comments = pd.concat([pd.DataFrame(read_jsonl(p)) for p in sorted((RAW / "comments").glob("*.jsonl"))],
                         ignore_index=True)
    comments = comments.merge(articles[["article_id", "target"]], on="article_id", how="left", validate="many_to_one")
    missing = comments["target"].isna()
    if missing.any():
        raise SystemExit(f"comments of unknown articles: {sorted(comments.loc[missing, 'article_id'].unique())}")
    return articles, comments


def make_sheet(n: int, out: Path, seed: int = SEED) -> None:
    """A blind annotation sheet: ids, the pact, the parent comment and the text, no labels."""
    articles, comments = load_raw()
    rng = random.Random(seed)
    per_article = -(-n // articles.shape[0])
    chosen = []
    for _, group in comments.groupby("article_id"):
        chosen += rng.sample(list(group.index), min(per_article, len(group)))
    rng.shuffle(chosen)
    text_of = dict(zip(comments["id"], comments["text"]))
    title_of = dict(zip(articles["article_id"], articles["title"]))
    rows = [{"id": comments.at[i, "id"], "pact": comments.at[i, "target"],
             "article_title": title_of[comments.at[i, "article_id"]],
             "replying_to": text_of.get(comments.at[i, "parent_id"]) if comments.at[i, "parent_id"] else None,
             "text": comments.at[i, "text"]} for i in chosen]
    write_jsonl(out, rows)
    print(f"wrote {len(rows)} comments to {out}")


def load_off_topic() -> pd.DataFrame:
    """The off-topic comments (``label`` ``off_topic``), with their article's target."""
    articles = pd.DataFrame([json.loads(p.read_text(encoding="utf-8")) for p in sorted((RAW / "articles").glob("*.json"))])
    files = sorted((RAW / "off-topic").glob("*.jsonl"))
    if not files:
        return pd.DataFrame(columns=SPLIT_COLUMNS)
    rows = pd.concat([pd.DataFrame(read_jsonl(p)) for p in files], ignore_index=True)
    rows = rows.merge(articles[["article_id", "target"]], on="article_id", how="left", validate="many_to_one")
    if rows["target"].isna().any():
        raise SystemExit(f"off-topic comments of unknown articles: {sorted(rows.loc[rows['target'].isna(), 'article_id'].unique())}")
    if set(rows["label"]) != {OFF_TOPIC}:
        raise SystemExit(f"off-topic files hold labels other than '{OFF_TOPIC}': {sorted(set(rows['label']) - {OFF_TOPIC})}")
    return rows


def make_offtopic_sheet(out: Path, n_off: int = 200, n_on: int = 100, seed: int = SEED) -> None:
    """A blind sheet for the off-topic second pass: ``n_off`` off-topic comments mixed with
    ``n_on`` on-topic corpus comments, half of them hard ones (very short, rhetorical questions,
    mentions of other countries and conflicts), shuffled; no labels."""
    articles, comments = load_raw()
    off = load_off_topic()
    rng = random.Random(seed)
    chosen_off = rng.sample(sorted(off["id"]), n_off)
    hard_tags = {"very_short", "rhetorical_question", "other_conflicts"}
    tags = comments["phenomena"].apply(lambda t: bool(hard_tags & set(t or [])))
    hard = sorted(comments.loc[tags, "id"])
    chosen_on = rng.sample(hard, n_on // 2)
    rest = sorted(set(comments["id"]) - set(chosen_on))
    chosen_on += rng.sample(rest, n_on - n_on // 2)
    everything = pd.concat([comments, off], ignore_index=True).set_index("id")
    text_of = everything["text"].to_dict()
    title_of = dict(zip(articles["article_id"], articles["title"]))
    ids = chosen_off + chosen_on
    rng.shuffle(ids)
    # opaque sheet ids: off-topic ids (aNN-xNNN) would give the answer away; the key stays apart
    rows, key = [], []
    for n, cid in enumerate(ids, 1):
        row = everything.loc[cid]
        parent = row["parent_id"] if isinstance(row["parent_id"], str) else None
        key.append({"id": f"s{n:03d}", "comment_id": cid})
        rows.append({"id": f"s{n:03d}", "article_title": title_of[row["article_id"]], "target": row["target"],
                     "parent_text": text_of.get(parent) if parent else None, "text": row["text"]})
    write_jsonl(out, rows)
    write_jsonl(OFFTOPIC_KEY, key)
    print(f"wrote {len(rows)} comments ({n_off} off-topic, {n_on} on-topic) to {out}, key in {OFFTOPIC_KEY}")


def build() -> None:
    from comment_stance.metrics import cohen_kappa

    articles, comments = load_raw()
    comments = comments.rename(columns={"label": "label_writer"})
    second_path = RAW / "annotation" / "second_pass.jsonl"
    adjudication_path = RAW / "annotation" / "adjudication.jsonl"
    second = {r["id"]: r["label"] for r in read_jsonl(second_path)} if second_path.exists() else {}
    decided = {r["id"]: r for r in read_jsonl(adjudication_path)} if adjudication_path.exists() else {}
    unknown = set(second) - set(comments["id"])
    if unknown:
        raise SystemExit(f"second-pass ids not in the corpus: {sorted(unknown)[:5]}")
    comments["label_second"] = comments["id"].map(second)
    disagreements = comments[comments["label_second"].notna() & (comments["label_second"] != comments["label_writer"])]
    undecided = sorted(set(disagreements["id"]) - set(decided))
    if undecided:
        raise SystemExit(f"{len(undecided)} disagreements lack an adjudicated label, e.g. {undecided[:5]}")
    comments["label"] = comments["label_writer"]
    comments["adjudicated"] = comments["id"].isin(disagreements["id"])
    for cid, row in decided.items():
        comments.loc[comments["id"] == cid, "label"] = row["label"]

    double = comments[comments["label_second"].notna()]
    agreement = {}
    if len(double):
        agreement = {
            "writer_vs_second": cohen_kappa(double["label_writer"], double["label_second"]),
            "writer_vs_final": cohen_kappa(double["label_writer"], double["label"]),
            "second_vs_final": cohen_kappa(double["label_second"], double["label"]),
            "adjudicated": int(comments["adjudicated"].sum()),
            "final_changed_from_writer": int((double["label"] != double["label_writer"]).sum()),
        }

    PROCESSED.mkdir(exist_ok=True)
    write_jsonl(PROCESSED / "articles.jsonl", articles.to_dict("records"))
    keep = SPLIT_COLUMNS + ["label_writer", "label_second", "adjudicated", "phenomena"]
    write_jsonl(PROCESSED / "comments.jsonl", (_clean(r) for r in comments[keep].to_dict("records")))
    (PROCESSED / "agreement.json").write_text(json.dumps(agreement, indent=2) + "\n")

    # random: stratified by label within each article, so every split mirrors the corpus
    strata = comments["article_id"] + "/" + comments["label"]
    rest, test = train_test_split(comments, test_size=0.15, stratify=strata, random_state=SEED)
    train, dev = train_test_split(rest, test_size=0.15 / 0.85, stratify=strata[rest.index], random_state=SEED)
    _write_splits("random", train, dev, test)

    # unseen-article: three whole articles only in test
    held = comments["article_id"].isin(UNSEEN_TEST_ARTICLES)
    seen = comments[~held]
    train, dev = train_test_split(seen, test_size=0.15, stratify=seen["article_id"] + "/" + seen["label"],
                                  random_state=SEED)
    _write_splits("unseen-article", train, dev, comments[held])
    off_counts = _build_off_topic(comments)
    print(json.dumps({"comments": len(comments), "articles": len(articles), "off_topic": off_counts,
                      "labels": comments["label"].value_counts().to_dict(),
                      "kappa": agreement.get("writer_vs_second", {}).get("overall")}, indent=2))


def _build_off_topic(comments: pd.DataFrame) -> dict:
    """Off-topic splits (70/15/15 stratified by article, seed 13) and the agreement of the blind
    off-topic sheet. The stance corpus and its splits are not touched."""
    from comment_stance.metrics import cohen_kappa

    off = load_off_topic()
    if off.empty:
        return {}
    second_path = RAW / "annotation" / "offtopic-second-pass.jsonl"
    decided_path = RAW / "annotation" / "offtopic-adjudication.jsonl"
    decided = {r["id"]: r for r in read_jsonl(decided_path)} if decided_path.exists() else {}
    if second_path.exists():
        key = {r["id"]: r["comment_id"] for r in read_jsonl(OFFTOPIC_KEY)}
        second = {key[r["id"]]: r["label"] for r in read_jsonl(second_path) if r["id"] in key}
        first = {**dict(zip(comments["id"], comments["label"])), **dict(zip(off["id"], off["label"]))}
        ids = sorted(second)
        writer = [first[i] for i in ids]
        other = [second[i] for i in ids]
        final = [decided.get(i, {}).get("label", first[i]) for i in ids]
        binary = lambda labels: [OFF_TOPIC if v == OFF_TOPIC else "on_topic" for v in labels]
        disagree = [i for i, a, b in zip(ids, binary(writer), binary(other)) if a != b]
        undecided = sorted(set(disagree) - set(decided))
        if undecided:
            raise SystemExit(f"{len(undecided)} off-topic disagreements lack an adjudicated label, e.g. {undecided[:5]}")
        agreement = {
            "sheet": len(ids), "sheet_off_topic_by_writer": binary(writer).count(OFF_TOPIC),
            "off_topic_vs_not": {"writer_vs_second": cohen_kappa(binary(writer), binary(other)),
                                 "writer_vs_final": cohen_kappa(binary(writer), binary(final)),
                                 "second_vs_final": cohen_kappa(binary(other), binary(final))},
            "four_way_writer_vs_second": cohen_kappa(writer, other),
            "disagreements": len(disagree),
            "final_changed_from_writer": sum(binary([a])[0] != binary([b])[0] for a, b in zip(writer, final)),
        }
        (PROCESSED / "offtopic-agreement.json").write_text(json.dumps(agreement, indent=2) + "\n")
    rest, test = train_test_split(off, test_size=0.15, stratify=off["article_id"], random_state=SEED)
    train, dev = train_test_split(rest, test_size=0.15 / 0.85, stratify=rest["article_id"], random_state=SEED)
    # an off-topic comment that adjudication found to take a stance leaves the off-topic splits
    # (after splitting, so that a decision does not reshuffle the other comments)
    dropped = sorted(i for i, r in decided.items() if i in set(off["id"]) and r["label"] != OFF_TOPIC)
    train, dev, test = (frame[~frame["id"].isin(dropped)] for frame in (train, dev, test))
    _write_splits("off-topic", train, dev, test)
    return {"rows": len(train) + len(dev) + len(test), "dropped_by_adjudication": len(dropped),
            "train": len(train), "dev": len(dev), "test": len(test)}


def _clean(row: dict) -> dict:
    return {k: (None if (isinstance(v, float) and pd.isna(v)) else v) for k, v in row.items()}


def _write_splits(name: str, train: pd.DataFrame, dev: pd.DataFrame, test: pd.DataFrame) -> None:
    for split, frame in (("train", train), ("dev", dev), ("test", test)):
        # keep thread order inside each split so that files read like the comment sections
        ordered = frame.sort_values(["article_id", "id"])[SPLIT_COLUMNS]
        write_jsonl(PROCESSED / name / f"{split}.jsonl", (_clean(r) for r in ordered.to_dict("records")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sheet = sub.add_parser("sheet", help="write a blind annotation sheet")
    sheet.add_argument("--n", type=int, default=480)
    sheet.add_argument("--out", type=Path, required=True)
    sub.add_parser("build", help="build data/processed from data/raw")
    offsheet = sub.add_parser("offtopic-sheet", help="write the blind off-topic annotation sheet")
    offsheet.add_argument("--out", type=Path, default=RAW / "annotation" / "offtopic-sheet.jsonl")
    args = parser.parse_args()
    if args.command == "sheet":
        make_sheet(args.n, args.out)
    elif args.command == "offtopic-sheet":
        make_offtopic_sheet(args.out)
    else:
        build()


if __name__ == "__main__":
    main()
