"""Benchmarks of batch scoring (``stance predict`` / ``comment_stance.scoring.score_file``).

Three measurements, each printed beside the peer it is judged against, in the same run:

1. throughput: end-to-end file scoring with a TF-IDF model (read, validate, score, write the
   output, move it into place) against bare scikit-learn ``predict_proba`` on the same texts
   already in memory; the issue asks for a ratio >= 0.8;
2. memory: peak RSS of child processes scoring synthetic files of each size in ``--memory``
   (each child measured the same way); the issue asks for peaks flat within 20%;
3. the transformer path: file scoring against the model's own in-memory ``predict_proba``
   (only when ``models/transformer.py`` exists and ``--transformer-model`` names a folder).

Examples::

    python bench/bench_scoring.py --rows 100000 --memory 100000          # quick
    python bench/bench_scoring.py --rows 100000 --memory 100000,1000000  # what docs/scoring.md reports
    python bench/bench_scoring.py --skip-throughput --memory '' --transformer-model models/transformer
    python bench/bench_scoring.py --skip-throughput --memory '' --train-transformer --transformer-rows 1000

No numbers are asserted here; tests never time anything.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny"


# -- synthetic comments -------------------------------------------------------------------------------
def _phrases() -> list[str]:
    phrases = []
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl"):
        with open(TINY / name) as handle:
            phrases += [json.loads(line)["text"] for line in handle if line.strip()]
    return phrases


def synthetic_rows(n: int, seed: int = 0):
    """``n`` comment rows that look like an export: ids, replies, authors, times, two targets."""
    rng = random.Random(seed)
    phrases = _phrases()
    for i in range(n):
        text = " ".join(rng.choice(phrases) for _ in range(rng.randint(2, 4)))
        parent = f"c{rng.randint(max(0, i - 200), i - 1)}" if i and rng.random() < 0.3 else ""
        yield {
            "id": f"c{i}", "parent_id": parent, "author": f"user{rng.randint(0, 5000)}",
            "created_at": f"2025-10-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z", "text": text,
            "article_id": f"a{i // 500}", "target": "Pact A" if (i // 500) % 2 == 0 else "Pact B",
        }


def write_synthetic(path: Path, n: int, fmt: str = "csv") -> Path:
    """Write ``n`` synthetic rows to ``path`` without holding them in memory."""
    fields = ["id", "parent_id", "author", "created_at", "text", "article_id", "target"]
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(synthetic_rows(n))
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as handle:
            for row in synthetic_rows(n):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = synthetic_rows(n)
        with pq.ParquetWriter(path, pa.schema([(f, pa.string()) for f in fields])) as writer:
            while True:
                batch = [row for _, row in zip(range(50_000), rows)]
                if not batch:
                    break
                writer.write_table(pa.Table.from_pylist(batch))
    elif fmt == "reddit":
        with open(path, "w", encoding="utf-8") as handle:
            for row in synthetic_rows(n):
                parent = f"t1_{row['parent_id']}" if row["parent_id"] else f"t3_{row['article_id']}"
                handle.write(json.dumps({"id": row["id"], "parent_id": parent, "link_id": f"t3_{row['article_id']}",
                                         "author": row["author"], "body": row["text"], "created_utc": 1761123600 + len(row["id"]),
                                         "subreddit": "worldnews", "score": 1}) + "\n")
    elif fmt in ("disqus", "wordpress"):
        from xml.sax.saxutils import escape

        with open(path, "w", encoding="utf-8") as handle:
            if fmt == "disqus":
                handle.write('<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com" '
                             'xmlns:dsq="http://disqus.com/disqus-internals">\n')
                for a in range(n // 500 + 1):
                    handle.write(f'<thread dsq:id="a{a}"><link>https://news.example.com/{a}</link>'
                                 f'<title>Pact {"A" if a % 2 == 0 else "B"}</title></thread>\n')
                for row in synthetic_rows(n):
                    parent = f'<parent dsq:id="{row["parent_id"]}"/>' if row["parent_id"] else ""
                    handle.write(f'<post dsq:id="{row["id"]}"><id/><message><![CDATA[<p>{escape(row["text"])}</p>]]>'
                                 f'</message><createdAt>{row["created_at"]}</createdAt><isDeleted>false</isDeleted>'
                                 f'<isSpam>false</isSpam><author><name>{row["author"]}</name>'
                                 f'<isAnonymous>false</isAnonymous></author><thread dsq:id="{row["article_id"]}"/>'
                                 f'{parent}</post>\n')
                handle.write("</disqus>\n")
            else:
                handle.write('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                             'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n<title>Example</title>\n')
                current = None
                for row in synthetic_rows(n):
                    if row["article_id"] != current:
                        if current is not None:
                            handle.write("</item>\n")
                        current = row["article_id"]
                        handle.write(f"<item><title>{row['target']}</title><wp:post_id>{current}</wp:post_id>\n")
                    parent = row["parent_id"][1:] if row["parent_id"] else "0"
                    handle.write(f"<wp:comment><wp:comment_id>{row['id'][1:]}</wp:comment_id><wp:comment_author>"
                                 f"{row['author']}</wp:comment_author><wp:comment_date_gmt>2025-10-22 09:00:00"
                                 f"</wp:comment_date_gmt><wp:comment_content><![CDATA[{row['text']}]]>"
                                 f"</wp:comment_content><wp:comment_parent>{parent}</wp:comment_parent></wp:comment>\n")
                handle.write("</item>\n</channel>\n</rss>\n")
    else:
        raise SystemExit(f"unknown --in-format {fmt}")
    return path


def reading(work: Path, rows: int, formats: list[str]) -> dict[str, float]:
    """Rows/s of read_chunks alone (parse, map, validate), per input format."""
    from comment_stance.readers import read_chunks

    suffix = {"reddit": "ndjson", "disqus": "xml", "wordpress": "xml"}
    rates = {}
    for fmt in formats:
        source = write_synthetic(work / f"read-{rows}-{fmt}.{suffix.get(fmt, fmt)}", rows, fmt)
        started = time.perf_counter()
        count = sum(len(chunk) for chunk in read_chunks(source, format=fmt))
        assert count == rows, (fmt, count)
        rates[fmt] = rows / (time.perf_counter() - started)
    return rates


# -- measurements ------------------------------------------------------------------------------------
def tfidf_model(work: Path, folder: str | None):
    from comment_stance import load_model, train

    if folder:
        return load_model(folder), folder
    target = work / "tfidf-logreg"
    if not target.exists():
        train(TINY, "tfidf-logreg", target)
    return load_model(target), f"tfidf-logreg trained on {TINY.relative_to(REPO)}"


def throughput(model, work: Path, rows: int, in_format: str, out_format: str, repeats: int) -> dict:
    """Best of ``repeats`` for each side, the two sides interleaved so both see the same machine.
    Wall-clock and CPU time are both kept: on a shared machine CPU time is the steadier of the two."""
    import pandas as pd

    from comment_stance.models.base import as_inputs
    from comment_stance.scoring import score_file

    source = write_synthetic(work / f"rows-{rows}.{in_format}", rows, in_format)
    frame = pd.DataFrame(list(synthetic_rows(rows)))
    texts = model._texts(as_inputs(frame))  # exactly the strings the pipeline sees when scoring the file
    del frame
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "file": []}

    def timed(side: str, work_fn) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work_fn()
        times[side].append((time.perf_counter() - wall, time.process_time() - cpu))

    for _ in range(repeats):
        timed("bare", lambda: model.pipeline_.predict_proba(texts))
        timed("file", lambda: score_file(model, source, work / f"scores.{out_format}", overwrite=True,
                                         review_below=0.5))
    best = {side: (min(t[0] for t in runs), min(t[1] for t in runs)) for side, runs in times.items()}
    return {
        "rows": rows, "input": in_format, "output": out_format,
        "bare_rows_per_s": rows / best["bare"][0], "file_rows_per_s": rows / best["file"][0],
        "ratio": best["bare"][0] / best["file"][0],
        "bare_cpu_rows_per_s": rows / best["bare"][1], "file_cpu_rows_per_s": rows / best["file"][1],
        "cpu_ratio": best["bare"][1] / best["file"][1],
        "bare_s": [round(t[0], 2) for t in times["bare"]], "file_s": [round(t[0], 2) for t in times["file"]],
    }


def memory(model_dir: str, work: Path, sizes: list[int], in_format: str, out_format: str) -> list[dict]:
    """Peak RSS of a child process per size; plus a child that only loads the model, for reference."""
    results = []
    for rows in [0, *sizes]:
        source = work / f"memory-{rows}.{in_format}"
        if rows and not source.exists():
            write_synthetic(source, rows, in_format)
        command = [sys.executable, __file__, "--child", model_dir, str(source if rows else ""),
                   str(work / f"memory-out.{out_format}")]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append({"rows": rows, **json.loads(output.strip().splitlines()[-1])})
    return results


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child(model_dir: str, source: str, out: str) -> None:
    """Load the model, then reset the peak-RSS mark (Linux ``clear_refs``) so that the peak
    reported is the one reached while scoring, next to the resident size before it."""
    import resource

    from comment_stance import load_model
    from comment_stance.scoring import score_file

    model = load_model(model_dir)
    baseline = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    rows, elapsed = 0, 0.0
    if source:
        started = time.perf_counter()
        rows = score_file(model, source, out, overwrite=True).rows
        elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    print(json.dumps({"baseline_rss_mib": round((baseline or 0) / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
                      "scoring_mib": round((peak - (baseline or 0)) / 1024, 1), "peak_reset": reset,
                      "scored": rows, "time_s": round(elapsed, 2)}))


def single_comment(model_dir: str, calls: int = 20) -> dict:
    """What a moderator waits for: loading the model (in a fresh process, imports included) and
    then scoring one comment at a time, with 1 thread as ``stance predict --text`` does."""
    code = ("import time, json, statistics; t = time.perf_counter(); from comment_stance import load_model, predict; "
            f"m = load_model({model_dir!r}, threads=1); load = time.perf_counter() - t; times = []\n"
            f"for i in range({calls + 1}):\n"
            "    t = time.perf_counter(); predict(m, ['Only with independent monitors, otherwise no.']); "
            "times.append(time.perf_counter() - t)\n"
            "print(json.dumps({'load_s': load, 'first_ms': times[0] * 1000, "
            "'median_ms': statistics.median(times[1:]) * 1000}))")
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def transformer(folder: str | None, work: Path, rows: int, train_one: bool, threads: int | None) -> dict | str:
    if importlib.util.find_spec("comment_stance.models.transformer") is None:
        return "skipped: src/comment_stance/models/transformer.py is not in this tree yet"
    if not folder and not train_one:
        return ("skipped: pass --transformer-model DIR (a folder written by 'stance train --model transformer') "
                "or --train-transformer")
    import pandas as pd

    from comment_stance import load_model, train
    from comment_stance.errors import StanceError
    from comment_stance.scoring import score_file

    if not folder:  # a one-epoch model on the tiny fixtures: its speed is that of any model of this size
        folder = str(work / "transformer")
        try:
            train(TINY, "transformer", folder, params={"epochs": 1}, overwrite=True)
        except StanceError as exc:
            return f"skipped: cannot train a transformer here ({exc})"
    one = single_comment(folder)
    model = load_model(folder, threads=threads)
    source = write_synthetic(work / f"transformer-{rows}.csv", rows, "csv")
    frame = pd.DataFrame(list(synthetic_rows(rows)))[["text", "target"]]
    started = time.perf_counter()
    model.predict_proba(frame)
    bare = time.perf_counter() - started
    started = time.perf_counter()
    score_file(model, source, work / "transformer-scores.csv", overwrite=True)
    e2e = time.perf_counter() - started
    return {"rows": rows, "model": folder, "threads": threads, "in_memory_rows_per_s": rows / bare,
            "file_rows_per_s": rows / e2e, "ratio": bare / e2e, "single_comment": one}


# -- main ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side; the best counts")
    parser.add_argument("--memory", default="100000", help="comma-separated sizes for peak RSS ('' to skip)")
    parser.add_argument("--in-format", default="csv", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--out-format", default="csv", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--model", help="a TF-IDF model folder (default: train one on the tiny fixtures)")
    parser.add_argument("--transformer-model", help="a transformer model folder, for the transformer path")
    parser.add_argument("--train-transformer", action="store_true",
                        help="without --transformer-model, train a one-epoch transformer on the tiny fixtures")
    parser.add_argument("--transformer-rows", type=int, default=2_000)
    parser.add_argument("--threads", type=int, help="torch threads for the transformer (default: torch's)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-single", action="store_true", help="skip the one-comment latency")
    parser.add_argument("--read-formats", default="csv,jsonl,parquet,reddit,disqus,wordpress",
                        help="formats for the reading-only measurement ('' to skip)")
    parser.add_argument("--read-rows", type=int, default=50_000)
    parser.add_argument("--workdir", help="keep generated files here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "INPUT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        model, model_name = tfidf_model(work, args.model)
        model_dir = args.model or str(work / "tfidf-logreg")
        results: dict = {"model": model_name, "cpus": os.cpu_count()}
        print(f"model: {model_name}; {os.cpu_count()} CPUs")
        if not args.skip_throughput:
            t = throughput(model, work, args.rows, args.in_format, args.out_format, args.repeats)
            results["throughput"] = t
            print(f"throughput, {t['rows']:,} rows, {t['input']} -> {t['output']}:")
            print("                                        wall rows/s   CPU rows/s   wall s per run")
            print(f"  bare predict_proba, texts in memory  {t['bare_rows_per_s']:>10,.0f}  {t['bare_cpu_rows_per_s']:>10,.0f}"
                  f"   {t['bare_s']}")
            print(f"  score_file, file to file            {t['file_rows_per_s']:>10,.0f}  {t['file_cpu_rows_per_s']:>10,.0f}"
                  f"   {t['file_s']}")
            print(f"  ratio {t['ratio']:.2f} wall, {t['cpu_ratio']:.2f} CPU (target >= 0.8)")
        if not args.skip_single:
            one = single_comment(model_dir)
            results["single_comment"] = one
            print(f"one comment (TF-IDF): load {one['load_s']:.2f} s in a fresh process, then "
                  f"{one['first_ms']:.1f} ms for the first comment, {one['median_ms']:.1f} ms median after")
        formats = [f.strip() for f in args.read_formats.split(",") if f.strip()]
        if formats:
            rates = reading(work, args.read_rows, formats)
            results["reading"] = rates
            print(f"reading only (read_chunks: parse, map, validate), {args.read_rows:,} rows:")
            for fmt, rate in rates.items():
                print(f"  {fmt:<10} {rate:>10,.0f} rows/s")
        sizes = [int(s) for s in args.memory.split(",") if s.strip()]
        if sizes:
            m = memory(model_dir, work, sizes, args.in_format, args.out_format)
            results["memory"] = m
            print("memory of a child process (MiB): RSS after loading the model, peak RSS while scoring, "
                  "and their difference")
            for row in m:
                what = f"{row['rows']:>9,} rows" if row["rows"] else "model only     "
                speed = f"  ({row['scored'] / row['time_s']:,.0f} rows/s)" if row["rows"] else ""
                print(f"  {what}  {row['baseline_rss_mib']:>8.1f}  {row['peak_rss_mib']:>8.1f}  "
                      f"{row['scoring_mib']:>+7.1f}{speed}")
            scored = [row for row in m if row["rows"]]
            if len(scored) > 1:
                growth = scored[-1]["peak_rss_mib"] / scored[0]["peak_rss_mib"] - 1
                extra = scored[-1]["scoring_mib"] / max(scored[0]["scoring_mib"], 0.1) - 1
                results["memory_growth"] = {"peak": growth, "scoring": extra}
                print(f"  {scored[0]['rows']:,} -> {scored[-1]['rows']:,} rows: peak {growth:+.1%}, "
                      f"scoring's own share {extra:+.1%} (target: flat within 20%)")
        t = transformer(args.transformer_model, work, args.transformer_rows, args.train_transformer, args.threads)
        results["transformer"] = t
        if isinstance(t, str):
            print(f"transformer path: {t}")
        else:
            print(f"transformer path, {t['rows']:,} rows ({t['model']}):")
            print(f"  model.predict_proba, texts in memory  {t['in_memory_rows_per_s']:>8,.1f} rows/s")
            print(f"  score_file, file to file             {t['file_rows_per_s']:>8,.1f} rows/s")
            print(f"  ratio {t['ratio']:.2f}")
            one = t["single_comment"]
            print(f"  one comment: load {one['load_s']:.2f} s in a fresh process, then {one['first_ms']:.0f} ms for "
                  f"the first comment, {one['median_ms']:.0f} ms median after")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
