"""The hotline import at scale: a 12345 export of 10,000 tickets, 5% of them bad, imported into a
running platform; prints rows per second and the rejected rows' reasons.

    .venv/bin/python -m bench.hotline_import_bench [--rows 10000] [--bad 0.05] [--concurrency 16] [--keep]

Starts the platform as ``make run`` does (``python -m wulian.launcher`` on a temporary data directory
and free ports, like bench/overload_bench.py), writes the file (:func:`write_hotline_file`, the format
of docs/hotline_import.md), runs ``wulian import hotline`` against it as an operator would (a
subprocess, the platform's settings), then runs it a second time: every good ticket must come back as
"imported before", none started again. Exit status 1 when a figure is not what the file holds.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.overload_bench import Platform

ROOT = Path(__file__).resolve().parent.parent

#: Realistic tickets: (the category column as a 12345 system fills it, content, address).
TICKETS = [
    ("SR-01", "小区门口垃圾堆积好几天没人清理，气味很大", "城北路北苑小区东门"),
    ("市容环境", "路边垃圾桶满了一直没人收，垃圾溢出来了", "火车站广场西侧"),
    ("噪音扰民", "隔壁工地晚上十一点还在施工打桩，吵得睡不着", "北苑小区3幢"),
    ("GY-01", "路灯坏了一个星期了，晚上很黑不安全", "城北路与人民路交叉口"),
    ("", "楼道里有人给电动车充电，很危险", "城南小区5幢2单元"),
    ("交通", "马路中间有个大坑，电动车骑过去差点摔倒", "人民路88号门口"),
    ("油烟扰民", "楼下饭店油烟太大，熏得没法开窗", "解放街23号"),
    ("其他", "咨询一下这个事情怎么办", ""),
    ("XF-01", "小区消防通道被私家车堵住了", "城北社区北苑小区"),
    ("绿化", "昨晚大风把路边的树吹倒了，压在人行道上", "江滨路"),
]
#: The kinds of bad row, cycled; each with what the import must say.
BAD_KINDS = ("no_ticket", "bad_time", "blank_content", "bad_phone", "too_long", "bad_ticket", "control_char")
HEADER = ["工单编号", "受理时间", "诉求分类", "诉求地址", "诉求内容", "来电人", "联系电话"]


def hotline_rows(rows: int, bad: float, *, run: str = "B", seed: int = 7) -> list[dict[str, str]]:
    """``rows`` tickets of a 12345 export, ``bad`` of them (a fraction, spread evenly) bad in one of
    :data:`BAD_KINDS`; the ``_bad`` key says which (not a column of the file)."""
    rnd = random.Random(seed)
    n_bad = round(rows * bad)
    bad_at = {round(i * rows / n_bad) for i in range(n_bad)} if n_bad else set()
    out = []
    for i in range(rows):
        category, content, address = TICKETS[i % len(TICKETS)]
        minute = i % (24 * 60)
        row = {
            "ticket": f"{run}{20261201 + i // 5000}{i:06d}",
            "time": f"2026-12-0{1 + i // 5000} {minute // 60:02d}:{minute % 60:02d}:00",
            "category": category, "address": address, "content": f"{content}（编号{i}）",
            "caller": rnd.choice(["张先生", "李女士", "王师傅", "匿名"]),
            "phone": f"139{rnd.randrange(10**8):08d}",
        }
        if i in bad_at:
            kind = BAD_KINDS[len([b for b in bad_at if b < i]) % len(BAD_KINDS)]
            row["_bad"] = kind
            if kind == "no_ticket":
                row["ticket"] = ""
            elif kind == "bad_time":
                row["time"] = "2026-13-45 25:61"
            elif kind == "blank_content":
                row["content"] = " \u200b "
            elif kind == "bad_phone":
                row["phone"] = "12345"
            elif kind == "too_long":
                row["content"] = "垃圾" * 1200
            elif kind == "bad_ticket":
                row["ticket"] = f"{row['ticket']}/副本 1"
            elif kind == "control_char":
                row["content"] = "垃圾\x00堆积"
        out.append(row)
    return out


def write_hotline_file(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write ``rows`` as a 12345 export: CSV with the Chinese header (``.csv``) or JSON lines with the
    English keys (``.jsonl``)."""
    keys = ["ticket", "time", "category", "address", "content", "caller", "phone"]
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps({k: row[k] for k in keys}, ensure_ascii=False) + "\n")
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            for row in rows:
                writer.writerow([row[k] for k in keys])
    return path


def run_import(platform: Platform, path: Path, concurrency: int) -> tuple[float, str, int]:
    """``wulian import hotline`` against the platform: (seconds, its output, exit status)."""
    env = platform.env
    began = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "wulian.cli", "import", "hotline", str(path), "--concurrency", str(concurrency),
         "--lang", "en"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - began, done.stdout, done.returncode


def figure(output: str, pattern: str) -> int:
    """A number of the import's summary."""
    found = re.search(pattern, output)
    return int(found.group(1)) if found else -1


async def bench(args: argparse.Namespace, data_dir: Path) -> bool:
    """Start the platform, import the file twice, print the figures; True when they are right."""
    rows = hotline_rows(args.rows, args.bad)
    path = write_hotline_file(data_dir / "hotline.csv", rows)
    bad = sum(1 for r in rows if "_bad" in r)
    platform = Platform(data_dir / "platform")
    try:
        await platform.ready()
        seconds, output, status = run_import(platform, path, args.concurrency)
        print(f"first import: {len(rows)} rows ({bad} bad) in {seconds:.1f} s wall (with start-up), exit {status}")
        print(output)
        rejected = list(csv.DictReader((path.with_name(path.name + ".rejected.csv")).open(encoding="utf-8-sig")))
        print(f"rejected rows file: {len(rejected)} rows; first five:")
        for row in rejected[:5]:
            print(f"  row {row['row']:>5}  ticket {row['ticket'] or '-':<16} {row['reason_en']}")
        started = figure(output, r"(\d+) new events")
        seconds2, output2, status2 = run_import(platform, path, args.concurrency)
        print(f"second import of the same file: {seconds2:.1f} s wall, exit {status2}")
        print(output2)
        again = figure(output2, r"(\d+) new events")
        before = figure(output2, r"(\d+) imported before")
        ok = (started == len(rows) - bad and len(rejected) == bad and again == 0 and before == len(rows) - bad)
        print(f"expected {len(rows) - bad} events and {bad} rejected rows; second run 0 new: "
              f"{'as expected' if ok else 'NOT as expected'}")
        return ok
    finally:
        platform.stop()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--bad", type=float, default=0.05, help="fraction of bad rows")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs, store)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="wulian-hotline-"))
    ok = asyncio.run(bench(args, data_dir))
    print("PASS" if ok else "FAIL")
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
