"""benchmarks/bench_token_shards.py end to end on two small synthetic corpora: both loaders measured where asked, the
same windows from each, results written where asked and the corpora deleted."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_measures_both_loaders_and_cleans_up(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_token_shards", ROOT / "benchmarks" / "bench_token_shards.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "work").mkdir()
    bench.main(["--hours", "0.2,0.5", "--eager-up-to", "0.2", "--windows", "40", "--batch", "8", "--work-dir", str(tmp_path / "work"),
                "--out", str(tmp_path / "results" / "shards")])
    rows = json.loads((tmp_path / "results" / "shards.json").read_text())["rows"]
    assert [(r["hours"], r["result"]["loader"]) for r in rows] == [(0.2, "mmap"), (0.2, "eager"), (0.5, "mmap")]
    assert rows[0]["result"]["checksum"] == rows[1]["result"]["checksum"] and rows[0]["result"]["windows"] == 40
    assert rows[2]["corpus"]["utterances"] > rows[0]["corpus"]["utterances"] > 10 and rows[0]["corpus"]["speakers"] == 1
    assert "| 0.5 | 1 |" in (tmp_path / "results" / "shards.md").read_text()
    assert not any((tmp_path / "work").iterdir())
