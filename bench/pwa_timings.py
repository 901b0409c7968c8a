"""PWA timings in Debian's Chromium (headless, via Playwright), against the real server.

The server is gunicorn with deploy/gunicorn.conf.py serving the app and the
PWA's files (as `./qorgau run` does, without nginx), on a migrated SQLite file
or on --database-url. One crew member is signed in with a session cookie.
Chromium keeps a profile directory between launches, so a cold start is a new
browser process with the service worker's cache already filled.

  * tap to saved: --taps taps on "Log incident" with the network off; each is
    timed in the page from the click to the "saved" confirmation being drawn
    (target p95 < 50 ms);
  * offline cold start: --cold-starts launches of a new Chromium offline,
    from navigation start until "Log incident" is shown, labelled and enabled
    (target < 1 s);
  * back online: --pending records saved offline, then the network returns;
    from the page's `online` event until the phone holds none unacknowledged
    (target < 2 s), --rounds times;
  * the precache (pwa/sw.js PRECACHE): bytes as stored and as sent gzip'd
    (level 5, nginx's setting; PNGs are sent as they are).

    .venv/bin/python bench/pwa_timings.py [--taps 200] [--cold-starts 10]
        [--pending 20] [--rounds 3] [--database-url URL]

Exits non-zero if a tap was not saved or a record not acknowledged.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from tests.browser import CHROMIUM, CHROMIUM_ARGS

TAP_P95_MS = 50
COLD_START_MS = 1000
ONLINE_MS = 2000
TIMEOUT_MS = 60_000

WAIT_READY = """() => {
    const b = document.getElementById('log-incident');
    return Boolean(b && !b.disabled && b.getClientRects().length > 0 && b.textContent.trim());
}"""

TAP = """async () => {
    const button = document.getElementById('log-incident');
    const saved = document.getElementById('saved');
    const before = location.hash;
    return await new Promise((resolve) => {
        let start;
        const observer = new MutationObserver(() => {
            if (!saved.hidden && saved.textContent.trim()) {
                observer.disconnect();
                const elapsed = performance.now() - start;
                // The app then opens the new incident's screen: wait for that, so
                // the next tap does not race it (it is not part of the timing).
                const until = performance.now() + 5000;
                const opened = () => (location.hash !== before || performance.now() > until
                    ? resolve(elapsed) : setTimeout(opened, 10));
                opened();
            }
        });
        observer.observe(saved, { childList: true, characterData: true, subtree: true,
                                  attributes: true });
        start = performance.now();
        button.click();
    });
}"""

WATCH_ONLINE = """() => {
    window.__bench = { online: null, done: null };
    window.addEventListener('online', () => { window.__bench.online = performance.now(); });
    const counter = document.getElementById('unsynced');
    new MutationObserver(() => {
        if (window.__bench.online !== null && window.__bench.done === null
                && counter.getAttribute('data-count') === '0') {
            window.__bench.done = performance.now();
        }
    }).observe(counter, { attributes: true, attributeFilter: ['data-count'] });
}"""

UNSYNCED = """async () => {
    const { countUnsynced } = await import('/js/store.js');
    return await countUnsynced();
}"""


def precache_sizes(pwa: Path) -> tuple[int, int, int]:
    """(files, bytes stored, bytes sent with nginx's gzip) of sw.js's PRECACHE."""
    text = (pwa / "sw.js").read_text()
    block = re.search(r"const PRECACHE = (\{.*?\});", text, re.S).group(1)
    paths = json.loads(re.sub(r",\s*}", "}", block)).keys()
    raw = sent = 0
    for path in paths:
        data = (pwa / path.lstrip("/")).read_bytes()
        raw += len(data)
        sent += len(data) if path.endswith(".png") or len(data) < 256 else \
            len(gzip.compress(data, compresslevel=5))
    return len(paths), raw, sent


def home(page) -> None:
    page.evaluate("location.hash = '#/'")
    page.wait_for_function(WAIT_READY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=200)
    parser.add_argument("--cold-starts", type=int, default=10)
    parser.add_argument("--pending", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None,
                        help="default: a migrated SQLite file in a temporary directory")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    print(f"taps={args.taps} cold starts={args.cold_starts} pending={args.pending} "
          f"rounds={args.rounds} chromium={CHROMIUM}")
    print("before:", benchlib.machine_load())
    ok = True
    with tempfile.TemporaryDirectory(prefix="qorgau-pwa-") as tmp:
        tmp = Path(tmp)
        db_url = args.database_url or f"sqlite:///{tmp / 'qorgau.db'}"
        world = benchlib.setup_world(db_url, 1, 1, posts=True)
        crew = world.crews[0]
        port = benchlib.free_port()
        origin = f"http://localhost:{port}"
        env = benchlib.bench_env(db_url, QORGAU_RP_ID="localhost", QORGAU_BASE_URL=origin,
                                 QORGAU_ALLOWED_ORIGINS=json.dumps([origin]))
        server = benchlib.start_gunicorn(env, port, 0, config=True,
                                         extra_args=("--workers", "2"))
        profile = tmp / "profile"
        taps, cold, online = [], [], []
        try:
            with sync_playwright() as pw:
                def launch(offline: bool):
                    ctx = pw.chromium.launch_persistent_context(
                        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                        base_url=origin, locale="en-GB", offline=offline)
                    ctx.set_default_timeout(TIMEOUT_MS)
                    # As the server's own cookie would, it outlives the browser process.
                    ctx.add_cookies([{"name": "qorgau_session", "value": crew.token,
                                      "url": origin, "expires": time.time() + 86400}])
                    return ctx

                # First visit online: the service worker installs and caches the shell.
                ctx = launch(False)
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto("/")
                page.wait_for_function("navigator.serviceWorker.controller !== null")
                page.wait_for_function("""async () => {
                    const { getMeta } = await import('/js/store.js');
                    return Boolean(await getMeta('rules')) && Boolean(await getMeta('me'));
                }""")
                page.wait_for_function(WAIT_READY)

                # Taps, offline.
                ctx.set_offline(True)
                for _ in range(args.taps):
                    home(page)
                    taps.append(page.evaluate(TAP))
                stored = page.evaluate("""async () => {
                    const { listIncidents } = await import('/js/store.js');
                    return (await listIncidents()).length;
                }""")
                if stored != args.taps:
                    print(f"FAILED: {args.taps} taps, {stored} incidents on the phone")
                    ok = False
                # Let them sync, so the next phases start from an empty outbox.
                ctx.set_offline(False)
                page.wait_for_function(f"async () => ({UNSYNCED})() .then(n => n === 0)",
                                       timeout=180_000)
                ctx.close()

                # Cold starts, offline.
                for _ in range(args.cold_starts):
                    ctx = launch(True)
                    page = ctx.pages[0] if ctx.pages else ctx.new_page()
                    page.goto("/", wait_until="commit")
                    page.wait_for_function(WAIT_READY)
                    cold.append(page.evaluate("performance.now()"))
                    ctx.close()

                # Back online with --pending records.
                ctx = launch(False)
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto("/")
                page.wait_for_function(WAIT_READY)
                for _ in range(args.rounds):
                    page.wait_for_function(f"async () => ({UNSYNCED})() .then(n => n === 0)")
                    ctx.set_offline(True)
                    for _ in range(args.pending):
                        home(page)
                        page.evaluate(TAP)
                    home(page)
                    page.evaluate(WATCH_ONLINE)
                    ctx.set_offline(False)
                    page.wait_for_function("window.__bench.done !== null", timeout=120_000)
                    online.append(page.evaluate("window.__bench.done - window.__bench.online"))
                ctx.close()
        except Exception as err:  # a timeout here is a failure to report, not a traceback
            print(f"FAILED: {type(err).__name__}: {str(err)[:300]}")
            ok = False
        finally:
            benchlib.stop([server])
            shutil.rmtree(profile, ignore_errors=True)

    p = benchlib.percentile
    if taps:
        print(f"tap to saved ({len(taps)} taps, offline): p50 {p(taps, 0.5):.1f} ms  "
              f"p95 {p(taps, 0.95):.1f} ms  max {max(taps):.1f} ms  "
              f"(target p95 < {TAP_P95_MS} ms: {benchlib.verdict(p(taps, 0.95) < TAP_P95_MS)})")
    if cold:
        print(f"offline cold start until 'Log incident' is enabled ({len(cold)} launches): "
              f"p50 {p(cold, 0.5):.0f} ms  p95 {p(cold, 0.95):.0f} ms  max {max(cold):.0f} ms  "
              f"(target < {COLD_START_MS} ms: {benchlib.verdict(max(cold) < COLD_START_MS)})")
    if online:
        print(f"'online' until {args.pending} pending records are acknowledged "
              f"({len(online)} rounds): " + ", ".join(f"{v:.0f} ms" for v in online)
              + f"  (target < {ONLINE_MS} ms: {benchlib.verdict(max(online) < ONLINE_MS)})")
    files, raw, sent = precache_sizes(benchlib.ROOT / "pwa")
    print(f"precache: {files} files, {raw / 1024:.1f} KiB stored, {sent / 1024:.1f} KiB "
          "sent with gzip (level 5; PNGs as they are)")
    print("after:", benchlib.machine_load())
    ok = ok and len(taps) == args.taps and len(cold) == args.cold_starts \
        and len(online) == args.rounds
    print("every tap saved, every record acknowledged:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
