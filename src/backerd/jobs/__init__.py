"""Backup jobs: scheduled incremental tar archives, skip-when-unchanged, verify, restore
and retention.

Pure cores (no I/O, tested exhaustively): ``config`` (the ``[[job]]`` rule table),
``records`` (what a run leaves behind), ``levels`` (which level runs next and which
snapshot files it uses), ``plan`` (which tape files a restore needs, in order),
``retention`` (which backups expire, which cassettes may be reused) and ``tardigest``
(SHA-256 of every member of a tar stream, sans-IO). Thin edges: ``history`` (the
catalog's job tables), ``device`` (st ioctls on a node), ``archiver`` (GNU tar as a
subprocess), ``spanning`` (the next cassette when an archive fills one; its names and
estimates are pure), ``backup_run`` and ``restore_run`` (the flows that tie them
together).
"""
