"""``backerd jobs``: every job's last result, next level and cassette, and what expires.

Reads the catalog (runs, pieces, recordings) and, when the daemon answers, the loaded
cassette and its preflight. ``next_cassette`` is the pure rule for what to load next;
how many cassettes the next run takes comes from ``spanning`` (its size as the last
run at the same level, against what the loaded cassette and blank ones hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from backerd.catalog.store import Catalog
from backerd.daemon.config import Config
from backerd.errors import BackerError, PreflightFailed
from backerd.jobs import history
from backerd.jobs.backup_run import job_dir
from backerd.jobs.config import JobConfig
from backerd.jobs.daemonlink import preflight, room_for, unit_view
from backerd.jobs.levels import next_level, snapshot_levels
from backerd.jobs.plan import chain
from backerd.jobs.records import BackupRecord
from backerd.jobs.retention import Retention, retention
from backerd.jobs.spanning import run_cassettes, size_estimate


def next_cassette(loaded: str | None, loaded_ok: bool | None,
                  reusable: Sequence[str]) -> str:
    """What the next run writes to: the loaded cassette when it passes the preflight,
    else the cassette that has been reusable longest, else a blank one."""
    if loaded is not None and loaded_ok:
        return f"{loaded} (loaded)"
    if loaded is not None and loaded_ok is None:
        return f"{loaded} (loaded; the preflight could not be asked)"
    if reusable:
        return f"{reusable[0]} (every backup on it has expired: label it with --force)"
    if loaded_ok is None:
        return "unknown (the daemon is not running)"
    return "a blank cassette"


def _run_json(catalog: Catalog, r: BackupRecord) -> dict[str, Any]:
    return {"id": r.id, "result": r.result, "level": r.kind, "started": r.started.isoformat(),
            "cassette": history.label_of(catalog, r.pieces[0].cassette_uuid) if r.pieces
            else None, "file": r.pieces[0].file_number if r.pieces else None,
            "files": r.files, "bytes": r.bytes, "verified": r.verified, "reason": r.reason,
            "lost": r.lost}


def jobs_report(config: Config, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC).astimezone()
    out: dict[str, Any] = {"jobs": [], "reusable": []}
    catalogs = {u.catalog for u in config.units if u.catalog is not None}
    keep = {j.name: j.keep for j in config.jobs}
    for path in sorted(catalogs):
        with Catalog(path) as catalog:
            records = history.runs(catalog)
            on_tape = {u for r in records for u in r.cassettes}
            kept = retention(records, keep, history.foreign_cassettes(catalog, on_tape))
            reusable = [history.label_of(catalog, u) for u in kept.reusable]
            out["reusable"] += reusable
            for job in config.jobs:
                unit = next((u for u in config.units if u.number == job.unit), None)
                if unit is None or unit.catalog != path:
                    continue
                out["jobs"].append(_job(config, catalog, job, records, kept, reusable, now))
    return out


def _job(config: Config, catalog: Catalog, job: JobConfig, records: list[BackupRecord],
         kept: Retention, reusable: list[str], now: datetime) -> dict[str, Any]:
    mine = [r for r in records if r.job == job.name]
    links = chain(mine, job.name).backups
    directory = job_dir(config, job)
    snaps = snapshot_levels([p.name for p in directory.iterdir()]) if directory.is_dir() \
        else set()
    level = next_level(links, job.full_every, now, snaps)
    loaded, loaded_ok = None, None
    estimate = size_estimate(mine, job.name, level)
    left, blank = None, None
    try:
        view = unit_view(config.control_socket, job.unit)
        loaded = view.cassette
        try:
            preflight(config.control_socket, job.unit)
            loaded_ok = True
        except PreflightFailed:
            loaded_ok = False
        except BackerError:  # not allowed to ask (not root, not the daemon's group)
            loaded_ok = None
        if estimate is not None and loaded_ok is not None:
            left, blank = room_for(config.control_socket, job.unit, estimate)
    except BackerError:
        pass
    return {
        "job": job.name, "unit": job.unit, "paths": list(job.paths),
        "last": _run_json(catalog, mine[-1]) if mine else None,
        "next_level": "full" if level == 0 else "incremental",
        "next_cassette": next_cassette(loaded, loaded_ok, reusable),
        "next_bytes": estimate,  # the last run at that level; None: none yet
        "next_cassettes": run_cassettes(estimate, left, blank),  # None: not known
        "chain": [r.id for r in links],
        "would_expire": [_run_json(catalog, r) for r in mine if r.id in kept.expired],
        "kept": [dict(_run_json(catalog, r), why=kept.kept[r.id]) for r in mine
                 if r.id in kept.kept],
    }
