"""Evidence in the crew app (issue 19), in Chromium with a fake camera and
microphone: record audio and attach a photo offline, keep them through a
restart, upload after the incident syncs; an upload cut mid-chunk (network
emulation, and a server killed mid-request) resumes without sending any
finished chunk again; files that are not photos get a clear error at once."""

import hashlib
import shutil
import time
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from api import create_app
from api.auth.access import SESSION_COOKIE
from api.auth.sessions import start_session
from api.extensions import db
from api.media.models import Attachment, MediaChunk
from api.orgs.models import Person
from tests.browser import (
    CHROMIUM,
    TIMEOUT,
    open_app,
    registration_id,
    sign_in,
    tap,
    wait_until,
)
from tests.conftest import base_config
from tests.factories import make_person, make_post, make_station
from tests.fault_helpers import Gunicorn, free_port, wait_for
from tests.media_browser import MEDIA_ARGS, ChunkWatch, media_items, throttle
from tests.media_helpers import jpeg_with_location, png_bytes, zip_bytes


@pytest.fixture(scope="module")
def browser(pw):
    """Chromium with a fake camera and microphone that grants them when asked."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def media_dir(live, tmp_path):
    live.app.config["MEDIA_DIR"] = str(tmp_path / "media")
    return tmp_path / "media"


def stored(app, incident_id=None):
    with app.app_context():
        query = select(Attachment).where(Attachment.stored_at.is_not(None))
        if incident_id:
            query = query.where(Attachment.incident_id == uuid.UUID(str(incident_id)))
        rows = list(db.session.scalars(query))
        db.session.remove()
        return rows


def incident_id_of(page) -> str:
    page.wait_for_function("location.hash.startsWith('#/incidents/')")
    return page.evaluate("location.hash.split('/')[2]")


def test_audio_and_a_photo_taken_offline_survive_a_restart_and_upload_after_the_incident(
        context, live, crew, media_dir):
    sign_in(context, live, crew)
    context.grant_permissions(["microphone", "camera"], origin=live.url)
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    ident = incident_id_of(page)
    record = page.locator("#md-record")
    expect(record).to_have_text("Record audio")
    record.click()
    expect(page.locator(".md-recording")).to_contain_text("Recording: 0:02", timeout=TIMEOUT)
    expect(record).to_have_text("Stop recording")
    record.click()
    expect(page.locator(".md-item[data-status=waiting]")).to_have_count(1)
    photo = jpeg_with_location(noise=1)
    page.set_input_files("#md-pick", files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg",
                                             "buffer": photo}])
    expect(page.locator(".md-item[data-status=waiting]")).to_have_count(2)
    expect(page.locator(".md-item").first).to_contain_text(
        "uploads after the incident is sent")
    # A restart, still offline: both files are still on the phone.
    page.close()
    page = context.new_page()
    page.goto(f"/#/incidents/{ident}")
    expect(page.locator(".md-item")).to_have_count(2)
    items = media_items(page)
    assert sorted(i["kind"] for i in items) == ["audio", "photo"]
    assert all(i["blob"] == i["size"] and i["size"] > 0 for i in items)
    photo_item = next(i for i in items if i["kind"] == "photo")
    assert photo_item["sha256"] == hashlib.sha256(photo).hexdigest()
    assert stored(live.app) == []
    # Signal again: the incident syncs first, then its media.
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_for(lambda: len(stored(live.app)) == 2, 60)
    rows = {a.kind: a for a in stored(live.app, ident)}
    assert rows["photo"].sha256 == photo_item["sha256"] and rows["photo"].size == len(photo)
    assert rows["audio"].content_type == "audio/webm"
    assert (media_dir / "sha256" / photo_item["sha256"][:2]).exists()
    expect(page.locator(".md-item[data-status=stored]")).to_have_count(2, timeout=TIMEOUT)
    expect(page.locator(".md-item").first).to_contain_text("sealed in the incident's history")
    # The phone keeps the receipts and frees the space.
    items = media_items(page)
    assert all(i["status"] == "stored" and i["blob"] is None for i in items)


@pytest.mark.parametrize(("name", "data", "words"), [
    ("photo.exe", png_bytes(), "named “.exe”"),
    ("photo.jpg", zip_bytes(), "ZIP archive"),
    ("big.jpg", b"\xff\xd8\xff" + b"\0" * (25 * 1024 * 1024 + 10), "too large"),
])
def test_a_file_that_is_not_a_photo_gets_a_clear_error_at_once(context, live, crew, media_dir,
                                                                 name, data, words):
    sign_in(context, live, crew)
    page = open_app(context)
    tap(page)
    incident_id_of(page)
    page.set_input_files("#md-pick", files=[{"name": name, "mimeType": "image/jpeg",
                                             "buffer": data}])
    expect(page.get_by_role("alert")).to_contain_text(words)
    assert media_items(page) == []


def pumping_wait(page, condition, seconds: float) -> bool:
    """Wait while Playwright delivers the page's events (time.sleep would not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        page.wait_for_timeout(100)
    return bool(condition())


def upload_and_cut(page, cut, resume, *, wait_stored):
    """Attach a photo on a slow link, cut the upload in the middle of its third
    chunk, restore it, and wait until the server has it. Returns the watch."""
    ident = incident_id_of(page)
    expect(page.locator(".md-panel")).to_be_visible()
    wait_until(page, """async () => {
        const { getIncident } = await import('/js/store.js');
        const r = await getIncident(location.hash.split('/')[2]);
        return r && r.synced_revision >= 1;
    }""")
    watch = ChunkWatch(page)
    cdp = page.context.new_cdp_session(page)
    throttle(cdp, upload_bytes_s=256 * 1024)  # a chunk a second
    photo = jpeg_with_location((1600, 1200), noise=1)
    assert len(photo) > 5 * 256 * 1024
    page.set_input_files("#md-pick", files=[{"name": "IMG_0002.jpg", "mimeType": "image/jpeg",
                                             "buffer": photo}])
    assert pumping_wait(page, lambda: watch.finished >= 2, 60)
    page.wait_for_timeout(500)  # the third chunk is on its way
    cut(cdp)
    page.wait_for_timeout(2000)
    resume(cdp)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    assert pumping_wait(page, lambda: wait_stored(ident), 90)
    return watch, photo


def test_an_upload_cut_by_the_network_resumes_without_resending_finished_chunks(
        context, live, crew, media_dir):
    sign_in(context, live, crew)
    page = open_app(context)
    tap(page)

    def cut(cdp):
        throttle(cdp, upload_bytes_s=256 * 1024, offline=True)
        context.set_offline(True)

    def resume(cdp):
        context.set_offline(False)
        throttle(cdp, upload_bytes_s=0, download_bytes_s=0, latency_ms=0)

    watch, photo = upload_and_cut(page, cut, resume,
                                  wait_stored=lambda ident: len(stored(live.app, ident)) == 1)
    chunks = -(-len(photo) // (256 * 1024))
    assert pumping_wait(page, lambda: set(watch.done_at) == set(range(chunks)), 10)
    assert watch.failed, "the cut did not interrupt any chunk"
    assert watch.resent_after_done == []
    with live.app.app_context():
        assert stored(live.app)[0].sha256 == hashlib.sha256(photo).hexdigest()



def test_upload_progress_never_takes_the_stop_button_from_under_a_finger(
        context, live, crew, media_dir):
    """While a photo uploads, each finished part changes only the progress line:
    "Stop recording" stays the same button, so a press held across a progress
    step is still a click (a redrawn panel swallowed it: pressed on the old
    button, released on the new one)."""
    sign_in(context, live, crew)
    context.grant_permissions(["microphone"], origin=live.url)
    page = open_app(context)
    tap(page)
    incident_id_of(page)
    wait_until(page, """async () => {
        const { getIncident } = await import('/js/store.js');
        const r = await getIncident(location.hash.split('/')[2]);
        return Boolean(r && r.synced_revision >= 1);
    }""")
    throttle(context.new_cdp_session(page), upload_bytes_s=128 * 1024)  # a part in 2 s
    page.set_input_files("#md-pick", files=[{"name": "IMG_0005.jpg", "mimeType": "image/jpeg",
                                             "buffer": jpeg_with_location((1600, 1200),
                                                                          noise=1)}])
    progress = page.locator(".md-item .md-state")
    expect(progress).to_contain_text("Uploading")
    record = page.locator("#md-record")
    record.click()
    expect(record).to_have_text("Stop recording")
    stop = record.element_handle()
    box = stop.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    shown = progress.inner_text()
    expect(progress).not_to_have_text(shown, timeout=TIMEOUT)  # the next part went up
    page.mouse.up()
    assert stop.evaluate("(button) => button.isConnected")
    expect(record).to_have_text("Record audio")  # the press was a click: recording stopped
    expect(page.locator(".md-item")).to_have_count(2)


@pytest.fixture
def gunicorn_world(database_url, tmp_path):
    if not database_url.startswith("sqlite:"):
        pytest.skip("the browser tests run in the SQLite pass")
    path = tmp_path / "killed.db"
    shutil.copyfile(make_url(database_url).database, path)
    url = f"sqlite:///{path}"
    app = create_app({**base_config(url), "MEDIA_DIR": str(tmp_path / "media")})
    with app.app_context():
        post = make_post(name="City Hospital No. 7")
        person = make_person("crew", station=make_station(default_post=post),
                             position="feldsher", language="en")
        token, _ = start_session(db.session.get(Person, person.id), user_agent="playwright")
        db.session.remove()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"QORGAU_MEDIA_DIR": str(tmp_path / "media"), "QORGAU_SECRET_KEY":
           "test-secret-key-not-for-production", "QORGAU_ALLOWED_ORIGINS": f'["{base}"]',
           "QORGAU_BASE_URL": base}
    servers = []

    def start():
        server = Gunicorn(url, workers=1, env=env, port=port, log_path=tmp_path / "g.log")
        servers.append(server)
        server.wait_ready()
        return server

    engine = create_engine(url)

    def stored_count(ident):
        with engine.connect() as conn:
            return conn.execute(select(Attachment.id).where(
                Attachment.incident_id == uuid.UUID(ident),
                Attachment.stored_at.is_not(None))).first()

    def chunk_rows():
        with engine.connect() as conn:
            return len(conn.execute(select(MediaChunk.index)).all())

    try:
        yield {"base": base, "token": token, "start": start, "stored": stored_count,
               "chunk_rows": chunk_rows}
    finally:
        for server in servers:
            server.stop()
        engine.dispose()


def test_an_upload_cut_by_a_server_killed_mid_request_resumes(browser, gunicorn_world):
    world = gunicorn_world
    server = world["start"]()
    context = browser.new_context(base_url=world["base"], locale="en-GB")
    context.set_default_timeout(TIMEOUT)
    try:
        context.add_cookies([{"name": SESSION_COOKIE, "value": world["token"],
                              "url": world["base"]}])
        page = open_app(context)
        tap(page)
        killed = {}

        def cut(cdp):
            killed["chunks_on_server"] = world["chunk_rows"]()
            killed["server"] = server
            import os
            import signal

            os.killpg(server.proc.pid, signal.SIGKILL)  # no goodbye: mid-request
            server.proc.wait(timeout=10)

        def resume(cdp):
            world["start"]()
            throttle(cdp, upload_bytes_s=0, download_bytes_s=0, latency_ms=0)

        watch, photo = upload_and_cut(page, cut, resume, wait_stored=lambda ident: bool(
            world["stored"](ident)))
        chunks = -(-len(photo) // (256 * 1024))
        assert pumping_wait(page, lambda: set(watch.done_at) == set(range(chunks)), 10)
        assert watch.failed, "the kill did not interrupt any chunk"
        assert watch.resent_after_done == []
        assert killed["chunks_on_server"] >= 2
    finally:
        context.close()


SHOTS = None  # set QORGAU_MEDIA_SHOTS=/some/dir to keep the screenshots


def phone_checks(page, name):
    import os

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{name}: sideways scroll ({width} px)"
    text = page.evaluate("document.body.innerText")
    for raw in ("null", "undefined", "md_", "[object", "attachment_added"):
        assert raw not in text, f"{name}: raw text {raw!r} on screen"
    folder = os.environ.get("QORGAU_MEDIA_SHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def test_the_evidence_screens_fit_a_phone(browser, live, crew, media_dir):
    context = browser.new_context(base_url=live.url, locale="en-GB",
                                  viewport={"width": 360, "height": 740})
    context.set_default_timeout(TIMEOUT)
    try:
        context.grant_permissions(["microphone"], origin=live.url)
        sign_in(context, live, crew)
        page = open_app(context)
        tap(page)
        ident = incident_id_of(page)
        page.set_input_files("#md-pick", files=[{"name": "IMG_0003.jpg",
                                                 "mimeType": "image/jpeg",
                                                 "buffer": jpeg_with_location()}])
        assert pumping_wait(page, lambda: len(stored(live.app, ident)) == 1, 30)
        page.locator("#md-record").click()
        expect(page.locator(".md-recording")).to_contain_text("Recording: 0:01")
        page.evaluate("document.getElementById('md-title').scrollIntoView({block: 'start'})")
        phone_checks(page, "crew-incident-recording")
        page.locator("#md-record").click()
        expect(page.locator(".md-item")).to_have_count(2)
        page.set_input_files("#md-pick", files=[{"name": "x.jpg", "mimeType": "image/jpeg",
                                                 "buffer": zip_bytes()}])
        expect(page.get_by_role("alert")).to_contain_text("ZIP archive")
        phone_checks(page, "crew-incident-media")
        page.goto("/#/incidents")
        phone_checks(page, "crew-incidents-list")
        # The phone's uploads done and the app closed before the manager looks
        # (one SQLite file: the test's writers would queue on its lock).
        assert pumping_wait(page, lambda: len(stored(live.app, ident)) == 2, 60)
        page.close()
        with live.app.app_context():
            crew_person = db.session.get(Person, crew)
            manager = make_person("manager", station=crew_person.station).id
        manager_context = browser.new_context(base_url=live.url, locale="en-GB",
                                              viewport={"width": 360, "height": 740})
        manager_context.set_default_timeout(TIMEOUT)
        try:
            sign_in(manager_context, live, manager)
            desk = manager_context.new_page()
            desk.goto(f"/#/review/incidents/{ident}")
            expect(desk.locator("#md-review img")).to_have_count(1)  # the audio has none
            # loading="lazy": scrolled to, and again if the console redraws the incident.
            desk.wait_for_function("""() => {
                const img = document.querySelector('#md-review img');
                if (!img) return false;
                img.scrollIntoView({block: 'nearest'});
                return img.complete && img.naturalWidth > 0;
            }""", polling=100)
            expect(desk.locator("#md-review")).to_contain_text("Download original")
            phone_checks(desk, "manager-incident-media")
            desk.goto("/#/review/devices")
            expect(desk.locator("#rv-devices")).to_contain_text("Media not uploaded")
            phone_checks(desk, "manager-devices")
        finally:
            manager_context.close()
    finally:
        context.close()


def test_the_microphone_is_asked_for_only_on_the_tap_and_low_storage_is_warned(
        context, live, crew, media_dir):
    # Count the app's calls for the microphone, and make the phone almost full:
    # 40 MB left of its quota (a real quota cannot be filled here in reasonable time).
    context.add_init_script("""
        window.__askedForMedia = 0;
        const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = (c) => {
            window.__askedForMedia += 1;
            return ask(c);
        };
        navigator.storage.estimate = async () => ({ quota: 500e6, usage: 460e6 });
    """)
    sign_in(context, live, crew)
    context.grant_permissions(["microphone"], origin=live.url)
    page = open_app(context)
    tap(page)
    incident_id_of(page)
    expect(page.locator("#md-record")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Phone storage almost full")
    assert page.evaluate("window.__askedForMedia") == 0
    page.locator("#md-record").click()
    expect(page.locator("#md-record")).to_have_text("Stop recording")
    assert page.evaluate("window.__askedForMedia") == 1
    expect(page.locator(".md-recording")).to_contain_text("Recording: 0:01")
    page.locator("#md-record").click()
    expect(page.locator(".md-item")).to_have_count(1, timeout=TIMEOUT)


def test_the_service_worker_uploads_the_media_after_the_app_is_closed(
        context, live, crew, media_dir):
    sign_in(context, live, crew)
    page = open_app(context)
    tap(page)
    ident = incident_id_of(page)
    wait_until(page, """async () => {
        const { getIncident } = await import('/js/store.js');
        const r = await getIncident(location.hash.split('/')[2]);
        return Boolean(r && r.synced_revision >= 1);
    }""")
    context.set_offline(True)
    page.set_input_files("#md-pick", files=[{"name": "IMG_0004.jpg", "mimeType": "image/jpeg",
                                             "buffer": jpeg_with_location()}])
    expect(page.locator(".md-item[data-status=waiting]")).to_have_count(1)
    # Close the app: only the service worker is left to upload it.
    page.goto("about:blank")
    context.set_offline(False)
    cdp, reg = registration_id(context, page, live)
    cdp.send("ServiceWorker.dispatchSyncEvent", {
        "origin": live.url, "registrationId": reg, "tag": "qorgau-outbox",
        "lastChance": False})
    assert pumping_wait(page, lambda: len(stored(live.app, ident)) == 1, 30)
