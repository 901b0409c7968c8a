"""The crew app's evidence in Chromium: fake camera and microphone, and the
requests a phone makes while it uploads (shared by the media browser tests
and bench/media_upload.py)."""

import re
from collections import defaultdict

from tests.browser import CHROMIUM_ARGS

MEDIA_ARGS = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
              "--use-fake-ui-for-media-stream"]
CHUNK_PATH = re.compile(r"/api/v1/media/([0-9a-f-]{36})/chunks/(\d+)$")


class ChunkWatch:
    """Every chunk PUT the page makes: sent, answered 200, failed (by index)."""

    def __init__(self, page):
        self.sent = defaultdict(int)
        self.done_at: dict[int, int] = {}  # index -> how many requests of it had been sent
        self.failed: list[int] = []
        self.resent_after_done: list[int] = []
        self.sizes: list[dict] = []
        page.on("request", self._request)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)

    @staticmethod
    def _index(request):
        match = CHUNK_PATH.search(request.url.split("?")[0])
        return int(match.group(2)) if match and request.method == "PUT" else None

    def _request(self, request):
        index = self._index(request)
        if index is None:
            return
        if index in self.done_at:
            self.resent_after_done.append(index)
        self.sent[index] += 1

    def _finished(self, request):
        index = self._index(request)
        if index is None:
            return
        response = request.response()
        if response is not None and response.status == 200:
            self.done_at.setdefault(index, self.sent[index])

    def _failed(self, request):
        index = self._index(request)
        if index is not None:
            self.failed.append(index)

    @property
    def finished(self) -> int:
        return len(self.done_at)


def throttle(cdp, *, upload_bytes_s: int, download_bytes_s: int = 200_000,
             latency_ms: float = 100, offline: bool = False) -> None:
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": offline, "latency": latency_ms, "downloadThroughput": download_bytes_s,
        "uploadThroughput": upload_bytes_s})


def media_items(page):
    return page.evaluate("""async () => {
        const { listItems } = await import('/js/media_store.js');
        return (await listItems()).map((i) => ({ id: i.id, kind: i.kind, size: i.size,
          status: i.status, sha256: i.sha256, blob: i.blob ? i.blob.size : null,
          incident_id: i.incident_id, type: i.type }));
    }""")
