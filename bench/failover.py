"""Failover: from the PostgreSQL primary's death to the first successful sync.

A primary and a synchronous standby (their own clusters on loopback, made with
initdb and pg_basebackup -R), gunicorn on libpq's multi-host URL
(target_session_attrs=read-write), --devices phones each sending --batches
batches of --per-batch records with the PWA's retry policy (Retry-After obeyed).
Half-way the primary is stopped with `pg_ctl stop -m immediate`; --promote-after
seconds later (the time a person or Patroni takes to decide) the standby is
promoted. Printed per run, then min / median / max:

- promote: `pg_ctl promote` until the standby takes writes;
- first sync (server): a client retrying every 0.1 s, ignoring Retry-After;
- first sync (device) and last device back: phones that obey Retry-After.

The same run as tests/test_replication.py's failover test (tests/replication_helpers.py
`failover_run`). Needs the PostgreSQL server binaries (QORGAU_PG_BIN, default
/usr/lib/postgresql/15/bin); as root they run as `postgres`. Exits non-zero when
an incident a device was told about is missing, stored twice or renumbered.

    .venv/bin/python bench/failover.py [--runs 3] [--devices 8] [--batches 6]
        [--per-batch 5] [--gunicorn-workers 2] [--promote-after 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

FIGURES = [("promote_s", "promote"), ("death_to_first_sync_server_s", "first sync (server)"),
           ("death_to_first_device_sync_s", "first sync (device)"),
           ("death_to_last_device_back_s", "last device back")]


def one_run(args, n: int) -> dict:
    from tests.fault_helpers import check_outbox, check_store
    from tests.push_service import PushService
    from tests.replication_helpers import failover_run, stored_numbers

    push = PushService()
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                failover_run(push, Path(tmp), devices=args.devices, batches=args.batches,
                             per_batch=args.per_batch, workers=args.gunicorn_workers,
                             promote_after=args.promote_after, show_the_wait=False) as run:
            if run.crowd.errors:
                raise SystemExit(f"run {n}: devices gave up: {run.crowd.errors[:3]}")
            check_store(run.new_primary_url, run.ids)
            if stored_numbers(run.new_primary_url) != run.acked:
                raise SystemExit(f"run {n}: a stored case number differs from the one told")
            check_outbox(run.new_primary_url, run.scene, run.ids)
            figures = {k: run.figures.get(k) for k, _ in FIGURES}
            statuses = dict(run.crowd.statuses())
    finally:
        push.close()
    print(f"run {n}: {len(run.ids)} incidents, answers {statuses}; "
          + ", ".join(f"{label} {figures[k]:.2f} s" for k, label in FIGURES
                      if figures[k] is not None), flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--per-batch", type=int, default=5)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--promote-after", type=float, default=0.0,
                        help="seconds between the primary's death and the promotion")
    args = parser.parse_args()
    print(benchlib.machine_load(), flush=True)
    runs = [one_run(args, n + 1) for n in range(args.runs)]
    for key, label in FIGURES:
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            print(f"{label}: min {min(values):.2f} s, median {statistics.median(values):.2f} s,"
                  f" max {max(values):.2f} s ({len(values)} runs)")
    print(benchlib.machine_load())
    print("every acknowledged incident on the promoted standby, once, same number: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
