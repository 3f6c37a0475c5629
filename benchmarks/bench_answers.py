"""Answer speed and quality with the embedded model: first token, total time, server RSS.

    .venv/bin/python benchmarks/bench_answers.py --store STORE_WITH_NEETS \
        [--questions ../shared/eval/neets_dev.json] [--out benchmarks/out/answers.json]

Runs `manualrag eval --answers` (rag/evaluate.py) over the gold questions with the
settings as configured (by default the embedded Qwen2.5-Coder-1.5B on llama.cpp, 2
threads), samples the model server's RSS every 0.2 s, and prints the quality scores
beside p50/p95 of the first token and of the whole answer. The model load is timed
apart: it happens once per app start, not per question.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from manualrag.engine import Engine  # noqa: E402
from manualrag.settings import Settings  # noqa: E402
from rag.evaluate import format_answer_report, run_answer_eval  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident set size of one process, MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def server_pids() -> list[int]:
    """Our llama.cpp server processes (the embedded model runs as a child process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"llama_cpp.server" in cmd and str(os.getpid()).encode() in cmd:
                pids.append(int(entry.name))
    return pids


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak_mb = max(self.peak_mb, sum(rss_mb(pid) for pid in server_pids()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a store holding the gold questions' manual")
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared/eval/neets_dev.json")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/answers.json")
    args = parser.parse_args()

    engine = Engine(Settings(store={"path": args.store}))
    load_began = time.perf_counter()
    engine.answerer.prepare()
    load_s = time.perf_counter() - load_began
    sampler = RssSampler()
    sampler.start()
    try:
        report = run_answer_eval(engine, args.questions)
    finally:
        sampler.stop.set()
        sampler.join()
        engine.close()
    summary = report["summary"]
    summary["model_load_s"] = round(load_s, 1)  # type: ignore[index]
    summary["server_peak_rss_mb"] = round(sampler.peak_mb)  # type: ignore[index]
    summary["load_average"] = os.getloadavg()  # type: ignore[index]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(format_answer_report(report))
    print(f"model load {load_s:.1f} s (once per start); server peak RSS {sampler.peak_mb:,.0f} MiB")
    print(f"load average during the run: {os.getloadavg()}; report written to {args.out}")


if __name__ == "__main__":
    main()
