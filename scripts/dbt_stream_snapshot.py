#!/usr/bin/env python3
"""Makes the stream snapshot dbt attaches (alias `stream`) current, before dbt runs.

The stream layer's DuckDB file (STREAM_DUCKDB_PATH, default <ETL_STATE_DIR>/stream.duckdb) is held
open by the running consumer, and DuckDB lets no other process open it, not even read-only. So
dbt reads a copy, STREAM_SNAPSHOT_PATH (default <ETL_STATE_DIR>/stream-snapshot.duckdb):
  - the snapshot is already newer than the stream file (and its WAL): nothing to do;
  - no process holds the stream file: copy it here (COPY FROM DATABASE into a temporary file,
    renamed over the snapshot, so a reader never sees a partial file);
  - a consumer holds it: drop `<snapshot>.request` and wait, at most STREAM_SNAPSHOT_WAIT_S
    (default 60) seconds, for the consumer to publish a snapshot newer than the request; after
    that, dbt reads the snapshot there is (a warning says so);
  - no stream file at all (batch-only): an empty snapshot, so dbt reads "no stream data yet".
Run with the dbt venv's Python (its duckdb matches @duckdb/node-api's file format), by
scripts/dbt-build.sh, which exports the three settings as the config spec resolves them
(jobs/lib/config/spec.ts; this script repeats no default). Exit 0 unless the stream file cannot be read for another reason.
"""
import os
import sys
import time

import duckdb

LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


def mtime(path: str) -> float:
    t = 0.0
    for f in (path, path + ".wal"):
        try:
            t = max(t, os.stat(f).st_mtime)
        except FileNotFoundError:
            pass
    return t


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def copy(stream: str | None, snapshot: str) -> None:
    tmp = f"{snapshot}.tmp-{os.getpid()}"
    for f in (tmp, tmp + ".wal"):
        if os.path.exists(f):
            os.remove(f)
    os.makedirs(os.path.dirname(snapshot), exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {sql_string(tmp)} AS snap_out")
        if stream is not None:
            con.execute(f"ATTACH {sql_string(stream)} AS stream_src (READ_ONLY)")
            con.execute("COPY FROM DATABASE stream_src TO snap_out")
            con.execute("DETACH stream_src")
        con.execute("DETACH snap_out")
    finally:
        con.close()
    os.replace(tmp, snapshot)


def main() -> int:
    # Resolved by the config spec and exported by dbt-build.sh (config_env): no default repeated here.
    stream = os.environ["STREAM_DUCKDB_PATH"]
    snapshot = os.environ["STREAM_SNAPSHOT_PATH"]
    wait_s = float(os.environ["STREAM_SNAPSHOT_WAIT_S"])
    if not os.path.exists(stream):
        # Batch-only (or the stream file was removed): an old snapshot would be stale data.
        copy(None, snapshot)
        print(f"dbt-stream-snapshot: no stream file {stream}: empty snapshot (no stream data yet)", file=sys.stderr)
        return 0
    if os.path.exists(snapshot) and mtime(snapshot) >= mtime(stream):
        print(f"dbt-stream-snapshot: {snapshot} is current", file=sys.stderr)
        return 0
    try:
        copy(stream, snapshot)
        print(f"dbt-stream-snapshot: copied {stream} to {snapshot}", file=sys.stderr)
        return 0
    except duckdb.Error as e:
        if not any(m in str(e) for m in LOCK_MARKERS):
            raise
    # Held by a running consumer: ask it for a snapshot and wait (bounded).
    request = snapshot + ".request"
    with open(request, "w") as f:
        f.write(f"{os.getpid()}\n")
    asked = os.stat(request).st_mtime
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if os.path.exists(snapshot) and os.stat(snapshot).st_mtime > asked:
            print(f"dbt-stream-snapshot: the consumer published {snapshot}", file=sys.stderr)
            return 0
        time.sleep(0.2)
    if not os.path.exists(snapshot):
        copy(None, snapshot)
    print(
        f"dbt-stream-snapshot: WARNING no fresh snapshot from the consumer within {wait_s:.0f}s: "
        f"dbt reads the previous one ({snapshot})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
