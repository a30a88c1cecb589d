"""Benchmark of the Spark engine (issue 12) against single-process ``stance predict``.

For each family, on the same synthetic Parquet file (row groups of ``--row-group`` rows, no
parent ids, so Spark splits it into tasks of whole row groups):

1. single process: :func:`comment_stance.scoring.score_file` (what ``stance predict`` runs);
2. Spark ``local[1]`` and ``local[2]`` (``--cores``): :func:`comment_stance.spark.predict_files`
   end to end (plan, score, write partitioned Parquet, count, rename), session start-up excluded
   and printed separately;

then the ratio Spark local[2] / single process (the issue's goal: >= 0.7 for TF-IDF) and the
throughput per executor core, which docs/spark.md's sizing table is built from. The load
average is printed before and after each run: numbers from a busy machine are not comparable.

Examples::

    python bench/bench_spark.py --rows 2000 --transformer-rows 200 --train-transformer   # smoke check
    python bench/bench_spark.py                                     # full size: 1M TF-IDF, 20k transformer
    python bench/bench_spark.py --transformer-model models/transformer --skip-tfidf

No numbers are asserted here; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny"
CORPUS = REPO / "data" / "processed" / "random"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def write_comments(path: Path, rows: int, row_group: int, seed: int = 0) -> Path:
    """``rows`` synthetic comments (sentences of the tiny fixture, 2-4 per comment) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    phrases = [json.loads(line)["text"] for name in ("train", "dev", "test")
               for line in (TINY / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    writer = None
    for start in range(0, rows, row_group):
        n = min(row_group, rows - start)
        table = pa.table({
            "id": [f"c{i}" for i in range(start, start + n)],
            "text": [" ".join(rng.choice(phrases) for _ in range(rng.randint(2, 4))) for _ in range(n)],
            "target": ["Pact A" if (i // 500) % 2 == 0 else "Pact B" for i in range(start, start + n)],
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=row_group)
    writer.close()
    return path


def single(model: Path, source: Path, work: Path, runtime: dict) -> dict:
    from comment_stance.scoring import score_file

    out = work / "single.parquet"
    load = _load()
    started = time.perf_counter()
    summary = score_file(model, source, out, overwrite=True, runtime=runtime)
    elapsed = time.perf_counter() - started
    return {"engine": "single process", "rows": summary.rows, "time_s": round(elapsed, 2),
            "rows_per_s": round(summary.rows / elapsed, 1), "load_before": load, "load_after": _load()}


def spark_run(model: Path, source: Path, work: Path, cores: int, rows_per_task: int, memory: str) -> dict:
    from comment_stance import spark as cspark

    started = time.perf_counter()
    session = cspark.spark_session(f"local[{cores}]", {"spark.ui.enabled": "false", "spark.driver.memory": memory,
                                                      "spark.ui.showConsoleProgress": "false"})
    session.sparkContext.setLogLevel("ERROR")
    start_up = time.perf_counter() - started
    out = work / f"spark-{cores}"
    load = _load()
    try:
        summary = cspark.predict_files([source], model, out, spark=session, overwrite=True,
                                       rows_per_task=rows_per_task)
    finally:
        session.stop()
    return {"engine": f"spark {summary['master']}", "rows": summary["rows"], "tasks": summary["tasks"],
            "session_start_s": round(start_up, 2), "time_s": summary["time_s"],
            "rows_per_s": summary["rows_per_s"], "rows_per_s_per_core": round(summary["rows_per_s"] / cores, 1),
            "load_before": load, "load_after": _load()}


def compare(label: str, model: Path, rows: int, args, work: Path, runtime: dict) -> list[dict]:
    # at least 4 tasks per core of the largest run, so that every core has work to the end
    row_group = max(1, min(args.row_group, -(-rows // (4 * max(args.cores)))))
    source = write_comments(work / f"{label}.parquet", rows, row_group)
    rows_per_task = args.rows_per_task or max(row_group, rows // (4 * max(args.cores)))
    results = [single(model, source, work, runtime)]
    for cores in args.cores:
        results.append(spark_run(model, source, work, cores, rows_per_task, args.driver_memory))
    base = results[0]["rows_per_s"]
    print(f"\n{label}: {rows:,} comments")
    for r in results:
        extra = f", {r['tasks']} tasks, session start {r['session_start_s']} s" if "tasks" in r else ""
        print(f"  {r['engine']:<16} {r['rows_per_s']:>10,.0f} rows/s  ({r['time_s']} s{extra})  "
              f"ratio {r['rows_per_s'] / base:.2f}  [{r['load_before']} -> {r['load_after']}]")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="comments for the TF-IDF comparison")
    parser.add_argument("--transformer-rows", type=int, default=20_000, help="comments for the transformer")
    parser.add_argument("--cores", default="1,2", help="Spark local[N] core counts to measure")
    parser.add_argument("--row-group", type=int, default=50_000, help="largest Parquet row-group size")
    parser.add_argument("--rows-per-task", type=int, default=None, help="default: rows / (4 x most cores)")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--tfidf-model", type=Path, help="default: train tfidf-logreg on the shipped corpus")
    parser.add_argument("--transformer-model", type=Path, help="a transformer model folder")
    parser.add_argument("--train-transformer", action="store_true",
                        help="train a tiny transformer on the test fixture (smoke checks only)")
    parser.add_argument("--skip-tfidf", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.cores = [int(c) for c in args.cores.split(",") if c]
    import comment_stance as cs

    print(_load())
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = Path(tmp)
        if not args.skip_tfidf:
            model = args.tfidf_model
            if model is None:
                model = work / "tfidf"
                cs.train(CORPUS if CORPUS.is_dir() else TINY, "tfidf-logreg", model)
            results["tfidf"] = compare("tfidf", model, args.rows, args, work, {})
        model = args.transformer_model
        if model is None and args.train_transformer:
            model = work / "transformer"
            cs.train(TINY, "transformer", model, params={"max_length": 32, "epochs": 1, "batch_size": 4,
                                                          "patience": 0})
        if model is not None:
            # single process: torch's default threads (all cores), as 'stance predict' runs
            results["transformer"] = compare("transformer", model, args.transformer_rows, args, work, {})
        shutil.rmtree(work / "spark-1", ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
