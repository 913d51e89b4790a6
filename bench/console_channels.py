"""The console's channel list at scale, in a real browser: 100,000 channels against 1,000 as the
baseline, side by side, same machine, same steps.

    .venv/bin/python bench/console_channels.py [--channels 100000] [--baseline 1000] [--pages 10]

For each registry size: a fresh SQLite database filled like bench/console_map.py (100 channels a
device), `camgrid serve` on it (no media node), and Debian's headless chromium logged in as a
viewer. Timed from the operator's side (the action to the rows on screen): the list's first page,
`--pages` scrolls to the end of what is loaded (each fetches the next server page of 200 by cursor
— an index range, never an OFFSET — into the virtual list), a search by name, the offline filter;
the main thread's long tasks (over 50 ms) over the whole sequence, and how many rows the page
holds at the end (the virtual list renders only those on screen). Prints one JSON object;
docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from console_map import fill  # noqa: E402

from camgrid.governance.users import create_user  # noqa: E402
from camgrid.store.engine import make_engine, migrate  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long enough password 1"
OBSERVER = """
window.__longtasks = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longtasks.push(e.duration); })
  .observe({ type: 'longtask', buffered: true });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data: Path, url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, CAMGRID__MEDIA__EMBEDDED='"off"', CAMGRID__VQD__PATROL="false")
    proc = subprocess.Popen([sys.executable, "-m", "camgrid", "serve", "--data-dir", str(data), "--database-url", url,
                             "--http-port", str(port), "--sip-port", str(free_port()), "--sip-id",
                             "34020000002000000001", "--sip-host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    seen = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if "camgrid serving" in line:
            return proc, port
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("camgrid serve did not start:\n" + "".join(seen[-20:]))


def measure(n: int, pages: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        fill(engine, n)
        create_user(engine, "viewer1", PASSWORD, "viewer")
        engine.dispose()
        proc, port = serve(Path(tmp) / "data", url)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                pw.selectors.set_test_id_attribute("data-test")
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
                context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
                context.add_init_script(OBSERVER)
                page = context.new_page()
                page.goto(base + "/login")
                page.locator("[data-test=username] input, input[data-test=username]").first.fill("viewer1")
                page.locator("[data-test=password] input, input[data-test=password]").first.fill(PASSWORD)
                t0 = time.perf_counter()
                page.get_by_test_id("login-submit").click()
                rows = page.get_by_test_id("channel-table").locator(".el-table-v2__row")
                rows.first.wait_for()
                first_page = time.perf_counter() - t0
                page.evaluate("() => { window.__longtasks = [] }")
                page_times = []
                loaded = page.get_by_test_id("loaded-count")
                page.get_by_test_id("channel-table").hover()
                for i in range(pages):
                    want = f"{200 * (i + 2)}"
                    t0 = time.perf_counter()
                    while want not in loaded.inner_text():
                        page.mouse.wheel(0, 1500)
                        page.wait_for_timeout(20)
                        if time.perf_counter() - t0 > 60:
                            raise SystemExit(f"scrolling did not load row {want}")
                    page_times.append(time.perf_counter() - t0)
                rendered = rows.count()
                search = page.locator("[data-test=search] input, input[data-test=search]").first
                wanted = f"cam {n - 7}"
                t0 = time.perf_counter()
                search.fill(wanted)
                page.wait_for_function("(w) => [...document.querySelectorAll('[data-test=channel-name]')]"
                                       ".some((e) => e.innerText.trim() === w)", arg=wanted, timeout=60_000)
                search_s = time.perf_counter() - t0 - 0.25  # the list waits 250 ms for typing to stop
                search.fill("")
                rows.first.wait_for()
                t0 = time.perf_counter()
                with page.expect_response(lambda r: "/api/v1/channels?" in r.url and "status=offline" in r.url):
                    page.get_by_test_id("status-filter").get_by_text("离线").click()
                page.wait_for_function("() => !document.querySelector('[data-test=channel-table] .el-loading-mask')"
                                       " || getComputedStyle(document.querySelector('[data-test=channel-table] "
                                       ".el-loading-mask')).display === 'none'")
                rows.first.wait_for()
                filter_s = time.perf_counter() - t0
                tasks = page.evaluate("() => window.__longtasks")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return {"channels": n, "rows_in_page_after_scrolling": rendered, "loaded": 200 * (pages + 1),
            "first_page_ms": round(first_page * 1e3), "next_page_ms_median": round(
        statistics.median(page_times) * 1e3), "next_page_ms_max": round(max(page_times) * 1e3),
            "search_ms": round(search_s * 1e3), "offline_filter_ms": round(filter_s * 1e3),
            "long_tasks": len(tasks), "long_task_ms_max": round(max(tasks, default=0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=1_000)
    ap.add_argument("--pages", type=int, default=10)
    args = ap.parse_args()
    base = measure(args.baseline, args.pages)
    big = measure(args.channels, args.pages)
    ratios = {k: round(big[k] / base[k], 2) for k in ("first_page_ms", "next_page_ms_median", "search_ms",
                                                       "offline_filter_ms") if base[k]}
    print(json.dumps({"baseline": base, "scale": big, "ratio_scale_over_baseline": ratios}, indent=2))


if __name__ == "__main__":
    main()
