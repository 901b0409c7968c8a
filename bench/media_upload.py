"""Evidence upload over an emulated 3G link: a large photo from the crew app to
the server, in Debian's Chromium (headless, via Playwright), against gunicorn.

The link is Chrome DevTools' own throttling (CDP Network.emulateNetworkConditions),
applied once the incident has synced; the photo is picked on the incident's
screen as a person would (the file input), kept in IndexedDB, and uploaded in
256 KiB chunks (api/media). Prints:

  * time to uploaded: from picking the photo until the phone marks it stored
    (the server has checked every chunk's and the whole file's SHA-256, stored
    it and sealed its hash in the incident's chain);
  * of which keeping it on the phone (hashing and the IndexedDB write);
  * overhead over the raw bytes: every byte of the upload's requests and
    answers (headers and bodies as Chromium counts them) over the file's size;
  * what the link alone would need for the raw bytes, for comparison.

    .venv/bin/python bench/media_upload.py [--megabytes 10] [--link good-3g|regular-3g|none]

Links (DevTools' presets): good-3g 1.5 Mbit/s down, 750 kbit/s up, 40 ms;
regular-3g 750 kbit/s down, 250 kbit/s up, 100 ms. Exits non-zero if the
photo was not stored byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from tests.browser import CHROMIUM, CHROMIUM_ARGS

LINKS = {  # bytes per second, milliseconds
    "good-3g": {"download": 1_500_000 / 8, "upload": 750_000 / 8, "latency": 40},
    "regular-3g": {"download": 750_000 / 8, "upload": 250_000 / 8, "latency": 100},
    "none": None,
}
TIMEOUT_MS = 60_000


def make_photo(megabytes: float) -> bytes:
    """A real JPEG (camera-like noise compresses poorly) of about `megabytes`."""
    from PIL import Image

    target = int(megabytes * 1024 * 1024)
    side = max(64, int(math.sqrt(target / 3 / 0.62)))
    while True:
        width, height = side * 4 // 3, side * 3 // 4
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=92)
        data = out.getvalue()
        if len(data) >= target * 0.95 or side > 20000:
            return data
        side = int(side * math.sqrt(target / len(data)) * 1.02)


STATUS = """async () => {
    const { listItems } = await import('/js/media_store.js');
    const items = await listItems();
    return items.length ? items[0].status : null;
}"""


def wait_status(page, start: float, done, hours: float = 1) -> float:
    """Seconds from `start` until the photo's status on the phone satisfies `done`."""
    while time.perf_counter() - start < hours * 3600:
        if done(page.evaluate(STATUS)):
            return time.perf_counter() - start
        page.wait_for_timeout(50)
    raise SystemExit("the photo was not uploaded within the hour")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--link", choices=sorted(LINKS), default="good-3g")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    photo = make_photo(args.megabytes)
    digest = hashlib.sha256(photo).hexdigest()
    print(f"photo={len(photo)} bytes link={args.link} chromium={CHROMIUM}")
    print("before:", benchlib.machine_load())
    ok = True
    with tempfile.TemporaryDirectory(prefix="qorgau-media-") as tmp:
        tmp = Path(tmp)
        db_url = f"sqlite:///{tmp / 'qorgau.db'}"
        world = benchlib.setup_world(db_url, 1, 1, posts=True)
        crew = world.crews[0]
        port = benchlib.free_port()
        origin = f"http://localhost:{port}"
        env = benchlib.bench_env(db_url, QORGAU_RP_ID="localhost", QORGAU_BASE_URL=origin,
                                 QORGAU_ALLOWED_ORIGINS=json.dumps([origin]),
                                 QORGAU_MEDIA_DIR=str(tmp / "media"))
        server = benchlib.start_gunicorn(env, port, 0, config=True,
                                         extra_args=("--workers", "2"))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                ctx = browser.new_context(base_url=origin, locale="en-GB")
                ctx.set_default_timeout(TIMEOUT_MS)
                ctx.add_cookies([{"name": "qorgau_session", "value": crew.token,
                                  "url": origin}])
                page = ctx.new_page()
                page.goto("/")
                page.wait_for_function("navigator.serviceWorker.controller !== null")
                page.get_by_role("button", name="Log incident", exact=True).click()
                page.wait_for_function("location.hash.startsWith('#/incidents/')")
                page.wait_for_function("""async () => {
                    const { getIncident } = await import('/js/store.js');
                    const r = await getIncident(location.hash.split('/')[2]);
                    return r && r.synced_revision >= 1;
                }""")
                link = LINKS[args.link]
                if link:
                    cdp = ctx.new_cdp_session(page)
                    cdp.send("Network.enable")
                    cdp.send("Network.emulateNetworkConditions", {
                        "offline": False, "latency": link["latency"],
                        "downloadThroughput": link["download"],
                        "uploadThroughput": link["upload"]})
                finished = []
                page.on("requestfinished", lambda r: finished.append(r)
                        if "/media" in r.url and not r.url.endswith("/media/device")
                        else None)
                start = time.perf_counter()
                page.set_input_files("#md-pick", files=[{
                    "name": "IMG_1000.jpg", "mimeType": "image/jpeg", "buffer": photo}])
                kept = wait_status(page, start, lambda s: s is not None)
                uploaded = wait_status(page, start, lambda s: s == "stored")
                for _ in range(50):  # the last requestfinished events
                    if any(r.url.endswith("/complete") for r in finished):
                        break
                    page.wait_for_timeout(100)
                up = down = 0
                chunks = 0
                for request in finished:
                    sizes = request.sizes()
                    up += sizes["requestBodySize"] + sizes["requestHeadersSize"]
                    down += sizes["responseBodySize"] + sizes["responseHeadersSize"]
                    chunks += "/chunks/" in request.url
                browser.close()
        finally:
            benchlib.stop([server])
        from sqlalchemy import create_engine, text

        engine = create_engine(db_url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT sha256, size FROM media_attachments "
                                    "WHERE stored_at IS NOT NULL")).first()
        engine.dispose()
        blob = tmp / "media" / "sha256" / digest[:2] / digest[2:4] / digest
        ok = bool(row and row[0] == digest and blob.exists() and blob.read_bytes() == photo)
    raw = len(photo)
    print(f"kept on the phone (hash + IndexedDB): {kept:.2f} s")
    print(f"time to uploaded: {uploaded:.1f} s ({len(finished)} requests, {chunks} chunks)")
    if link:
        print(f"the link alone for the raw bytes: {raw / link['upload']:.1f} s")
    print(f"sent {up} bytes, received {down} bytes for {raw} raw bytes: overhead "
          f"{100 * (up - raw) / raw:.2f} % up, {100 * (up + down - raw) / raw:.2f} % both ways")
    print("after:", benchlib.machine_load())
    print(f"stored byte for byte: {benchlib.verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
