"""``backerd catalog``: what is on every cassette, without mounting anything.

ls       every cassette: label, state, location, files, bytes, wear
show     one cassette and its files (``--members`` lists tar members too)
find     which cassette, which file, where: tar members whose path matches
set      change a cassette's location, inventory state or wear limit
rebuild  scan a cassette image (or a unit's cassette) and restore its rows
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backerd.catalog.schema import STATES
from backerd.errors import UsageError

if TYPE_CHECKING:
    from backerd.catalog.rebuild import Unseal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, metavar="FILE",
                        help="catalog database (default: catalog.db in the state directory)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the daemon's configuration (for the state directory)")
    common = argparse.ArgumentParser(add_help=False)  # the same options after the action
    common.add_argument("--catalog", type=Path, metavar="FILE", default=argparse.SUPPRESS)
    common.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common])

    p = add("ls", "list the cassettes")
    p.add_argument("--json", action="store_true")
    p = add("show", "show one cassette and its files")
    p.add_argument("cassette", help="label, UUID or UUID prefix")
    p.add_argument("--members", action="store_true", help="list tar members too")
    p.add_argument("--json", action="store_true")
    p = add("find", "find tar members by path (shell pattern or substring)")
    p.add_argument("pattern")
    p.add_argument("--json", action="store_true")
    p = add("set", "change location, state or wear limit")
    p.add_argument("cassette")
    p.add_argument("--location", metavar="TEXT")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--wear-limit", type=int, metavar="PASSES")
    p = add("rebuild", "scan a cassette and restore its catalog rows")
    p.add_argument("image", nargs="?", type=Path, help="a cassette image")
    p.add_argument("--unit", type=int, metavar="N", help="the cassette in the daemon's unit N")
    p.add_argument("--name", metavar="TEXT",
                   help="a name for an unlabelled cassette (original driver's tapes)")
    p.add_argument("--key-file", type=Path, metavar="FILE",
                   help="the key of an encrypted cassette, to index its archives' members "
                        "(default with --unit: the unit's key_file)")
    p.add_argument("--json", action="store_true")


def catalog_path(args: argparse.Namespace) -> Path:
    if args.catalog is not None:
        return Path(args.catalog)
    from backerd.daemon.config import load_config

    return load_config(args.config).state_dir / "catalog.db"


def run(args: argparse.Namespace) -> int:
    from backerd.catalog.store import Catalog

    if args.action == "rebuild":
        return _rebuild(args)
    with Catalog(catalog_path(args)) as cat:
        if args.action == "ls":
            return _ls(cat, args.json)
        if args.action == "show":
            return _show(cat, args.cassette, args.members, args.json)
        if args.action == "find":
            return _find(cat, args.pattern, args.json)
        if args.action == "set":
            if args.location is None and args.state is None and args.wear_limit is None:
                raise UsageError("nothing to set: give --location, --state or --wear-limit")
            row = cat.set_cassette(args.cassette, state=args.state, location=args.location,
                                   wear_limit=args.wear_limit)
            print(f"{row.label or row.uuid}: {row.state}, location {row.location or '-'}, "
                  f"wear {row.passes}/{row.wear_limit} passes")
            return 0
    raise UsageError(f"unknown action {args.action!r}")


def _dump(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _ls(cat: Any, as_json: bool) -> int:
    rows = []
    for c in cat.cassettes():
        recs = cat.recordings(c.uuid, members=False)
        rows.append({**asdict(c), "files": len(recs), "bytes": sum(r.bytes for r in recs),
                     "worn": c.worn})
    if as_json:
        _dump(rows)
        return 0
    print(f"{'label':<20} {'uuid':<8} {'state':<8} {'files':>5} {'bytes':>14} "
          f"{'wear':>10}  location")
    for r in rows:
        wear = f"{r['passes']}/{r['wear_limit']}" + ("!" if r["worn"] else "")
        label = r["label"] if r["labelled"] else f"({r['label'] or 'unlabelled'})"
        print(f"{label:<20} {r['uuid'][:8]:<8} {r['state']:<8} {r['files']:>5} "
              f"{r['bytes']:>14,} {wear:>10}  {r['location']}")
    return 0


def _volume_sets(cat: Any, uuid: str) -> list[dict[str, Any]]:
    """The multi-volume archives the cassette is part of: where it is in each."""
    from backerd.catalog.volumes import VolumeLog

    out = []
    for vs in VolumeLog(cat).sets_on(uuid):
        volumes = [asdict(v) for v in vs.volumes]
        out.append({"set": vs.uuid, "archive": vs.archive, "state": vs.state,
                    "created": vs.created, "count": vs.count, "volumes": volumes,
                    "here": [v["seq"] for v in volumes if v["cassette_uuid"] == uuid]})
    return out


def _show(cat: Any, key: str, members: bool, as_json: bool) -> int:
    snap = cat.snapshot(cat.cassette(key).uuid)
    snap["volume_sets"] = _volume_sets(cat, snap["cassette"]["uuid"])
    if as_json:
        if not members:
            for r in snap["recordings"]:
                r["members"] = len(r["members"])
        _dump(snap)
        return 0
    c = snap["cassette"]
    print(f"cassette  {c['label'] or '(unlabelled)'}  {c['uuid']}")
    print(f"          {c['standard']}, {c['length_seconds'] // 60} min, created "
          f"{c['created'] or '?'}, {'encrypted' if c['encrypted'] else 'not encrypted'}")
    print(f"state     {c['state']}, location {c['location'] or '-'}, wear "
          f"{c['passes']}/{c['wear_limit']} passes" + (" (WORN)" if c["passes"] >=
                                                        c["wear_limit"] else ""))
    print(f"{'file':>4}  {'counter':>8}  {'field':>8}  mode  {'bytes':>12}  {'blocks':>7}  "
          f"content  members  written")
    for r in snap["recordings"]:
        print(f"{r['file_number']:>4}  {r['counter_start']:>8}  {r['field_start']:>8}  "
              f"{r['mode']:<4}  {r['bytes']:>12,}  {r['blocks']:>7}  {r['content']:<7}  "
              f"{len(r['members']):>7}  {r['written_at']} {r['status']}")
        if members:
            for m in r["members"]:
                print(f"      {m['type']:<8} {m['size']:>12,}  {_time(m['mtime'])}  {m['path']}")
    for vs in snap["volume_sets"]:
        here = ", ".join(str(k) for k in vs["here"])
        order = ", ".join(v["label"] or v["cassette_uuid"][:8] for v in vs["volumes"])
        print(f"volume    {here} of {vs['count']} of {vs['archive'] or 'an archive'} "
              f"({vs['state']}, set {vs['set'][:8]}): {order}")
    return 0


def _time(mtime: float) -> str:
    try:
        return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "?"


def _find(cat: Any, pattern: str, as_json: bool) -> int:
    hits = list(cat.find(pattern))
    for h in hits:
        h["block"] = h["offset"] // h["block_size"] if h["block_size"] else None
    if as_json:
        _dump(hits)
    else:
        for h in hits:
            where = f"file {h['file_number']}" + (
                f" block {h['block']}" if h["block"] is not None else f" byte {h['offset']}")
            print(f"{h['label'] or h['uuid'][:8]}  {where}  at {h['counter_start']}  "
                  f"{h['size']:>12,}  {h['path']}")
    return 0 if hits else 1


def _rebuild(args: argparse.Namespace) -> int:
    from backerd.catalog.rebuild import rebuild_rows, scan_cassette
    from backerd.catalog.store import CassetteRow, Catalog, unlabelled_uuid
    from backerd.cli.progress import Bar
    from backerd.errors import CryptError
    from backerd.vcr.sim import Cassette

    if (args.image is None) == (args.unit is None):
        raise UsageError("give a cassette IMAGE or --unit N")
    if args.unit is not None and args.catalog is None:
        reply = _rebuild_in_daemon(args)
        if reply is not None:
            if args.json:
                _dump(reply)
            else:
                print(f"unit {args.unit}: {reply['files']} files, {reply['members']} tar "
                      f"members, {reply['bytes']:,} bytes catalogued as {reply['uuid']}")
                _say_sealed(reply.get("encrypted_unindexed", 0))
            return 0
    if args.image is not None:
        image, key_file = args.image, args.key_file
    else:
        image, key_file = _unit_image(args)
    unseal = _unseal(key_file) if key_file is not None else None
    with Cassette.open(image, readonly=True) as cassette:
        bar = Bar(f"rebuild {image.name}", 0, "fields")
        try:
            rebuilt = rebuild_rows(scan_cassette(cassette, progress=bar.update),
                                   cassette.fps, unseal=unseal)
        except CryptError as exc:  # before anything is stored: the catalog is unchanged
            raise CryptError(f"{image}: {exc.message}; the catalog is unchanged") from None
        finally:
            bar.done()
        length = cassette.slots // cassette.fps
        passes = cassette.wear.get("passes", 0)
        standard = cassette.standard.upper()
    label, rows = rebuilt.label, rebuilt.rows
    if label is not None:
        row = CassetteRow(uuid=label.uuid, label=label.text, standard=label.standard,
                          length_seconds=label.length_seconds, created=label.created,
                          encrypted=label.encrypted, passes=passes)
    else:
        name = args.name or str(Path(image).resolve())
        row = CassetteRow(uuid=unlabelled_uuid(name), label=args.name or "", labelled=False,
                          standard=standard, length_seconds=length, passes=passes)
    with Catalog(catalog_path(args)) as cat:
        cat.put_cassette(row)
        cat.replace_recordings(row.uuid, rows)
    summary = {"uuid": row.uuid, "label": row.label, "labelled": label is not None,
               "files": len(rows), "members": sum(len(r.members) for r in rows),
               "bytes": sum(r.bytes for r in rows), "encrypted_unindexed": rebuilt.sealed}
    if args.json:
        _dump(summary)
    else:
        what = f"label {row.label!r}" if label else "no label (original driver or blank)"
        print(f"{image}: {what}; {summary['files']} files, {summary['members']} tar members, "
              f"{summary['bytes']:,} bytes catalogued as {row.uuid}")
        _say_sealed(rebuilt.sealed)
    return 0


def _say_sealed(count: int) -> None:
    if count:
        what = "recording is encrypted and was" if count == 1 else (
            "recordings are encrypted and were")
        print(f"{count} {what} not indexed: give the key (--key-file FILE) to list their "
              "members")


def _rebuild_in_daemon(args: argparse.Namespace) -> dict[str, Any] | None:
    """The daemon holds the unit's cassette: it scans it (with the unit's key) into its
    own catalog. None when no daemon is running."""
    from backerd.daemon.config import load_config
    from backerd.daemon.control import NotRunning, ask, query

    socket = load_config(args.config).control_socket
    try:
        if args.key_file is not None:
            query(socket)  # is it running?
            raise UsageError(f"the daemon holds unit {args.unit}'s cassette and rebuilds "
                             "with the unit's own key_file: drop --key-file, or stop the "
                             "daemon (or give the cassette IMAGE and --catalog)")
        reply = ask(socket, {"request": "rebuild", "unit": args.unit}, timeout=24 * 3600)
    except NotRunning:
        return None
    return reply if isinstance(reply, dict) else None


def _unseal(key_file: Path) -> Unseal:
    from functools import partial

    from backerd.crypt.blocks import recording_opener
    from backerd.crypt.keys import load_key_file

    return partial(recording_opener, load_key_file(key_file))


def _unit_image(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Unit N's cassette image and the key to open it: --key-file, else the unit's own
    when it encrypts and its file is there."""
    from backerd.daemon.config import load_config

    config = load_config(args.config)
    for unit in config.units:
        if unit.number == args.unit:
            key = args.key_file
            if key is None and unit.encrypt and unit.key_file is not None:
                key = unit.key_file
                if not key.exists():  # as the daemon does: rebuild, the members left out
                    print(f"backerd catalog: unit {args.unit}'s key file {key} is missing: "
                          "its encrypted recordings cannot be indexed", file=sys.stderr)
                    key = None
            return unit.cassette, key
    raise UsageError(f"no unit {args.unit} in the configuration")
