"""The real app with one more incident hook, for nginx tests that need a sync
held in flight (tests/test_nginx_shedding.py), run by gunicorn as
`tests.held_app:create(DIR)`.

While the file DIR/held exists, each sync waits inside its transaction (after
touching DIR/entered) until DIR/release appears or 30 s pass.
"""

import time
from pathlib import Path

from api import create_app
from api.incidents import records


def create(directory: str):
    base = Path(directory)

    class Hold:
        def on_incidents_synced(self, batch):
            if not (base / "held").exists():
                return
            (base / "entered").touch()
            deadline = time.monotonic() + 30
            while not (base / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    app = create_app()
    records.register_hook(Hold())
    return app
