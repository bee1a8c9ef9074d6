"""Writes one snapshot of an app volume: a gzipped tar of everything in it,
with each SQLite database copied through SQLite's online backup API, so the
copy is consistent while the app keeps writing (no second writer, no stop).

usage: python3 volume-snapshot.py VOLUME_DIR OUT_DIR
Writes OUT_DIR/<YYYYMMDDTHHMMSSZ>.tar.gz and prints its name last.

Runs in the backup Job's first container, as the app's user, on the app's node
(the claim attaches to one node). Other files are read as they are: a file the
app rewrites in place during the run can fail it (the next run retries);
files written to a temporary name and renamed are always copied whole.
"""
import datetime
import os
import shutil
import sqlite3
import stat
import sys
import tarfile
import tempfile

SQLITE_HEADER = b"SQLite format 3\x00"
# SQLite's own files beside a database: the copy through the backup API already contains what they hold.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
# ext4's directory (root-only), and what a restore sets aside or stages (see volume-restore.py).
SKIPPED_TOP = ("lost+found",)
SKIPPED_PREFIXES = (".pre-restore-", ".restore-")


def is_sqlite(path):
    with open(path, "rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def copy_sqlite(source_path, target_path):
    """The online backup API in one step (pages=-1): it reads one snapshot under
    a read transaction, so the app's writes in WAL mode neither block it nor
    restart it; the copy is checked before it is packed."""
    source = sqlite3.connect(f"file:{source_path}?mode=rw", uri=True, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
        result = target.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise RuntimeError(f"{source_path}: the copy fails integrity_check: {result}")
    finally:
        target.close()
        source.close()


def skipped(top_level_name):
    return top_level_name in SKIPPED_TOP or top_level_name.startswith(SKIPPED_PREFIXES)


def raise_error(error):
    raise error


def snapshot(volume_dir, out_dir):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}.tar.gz"
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".work-", dir=out_dir)
    partial = os.path.join(out_dir, f".{name}.partial")
    counts = {"files": 0, "sqlite": 0, "bytes": 0}
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        # An unreadable directory fails the run rather than leaving its files out unnoticed.
        for root, dirs, files in os.walk(volume_dir, onerror=raise_error):
            relative_root = os.path.relpath(root, volume_dir)
            dirs[:] = sorted(d for d in dirs if not (relative_root == "." and skipped(d)))
            if relative_root != ".":
                tar.add(root, arcname=relative_root, recursive=False)
            databases = set()
            for f in sorted(files):
                path = os.path.join(root, f)
                if stat.S_ISREG(os.lstat(path).st_mode) and is_sqlite(path):
                    databases.add(f)
            for f in sorted(files):
                path = os.path.join(root, f)
                relative = os.path.normpath(os.path.join(relative_root, f))
                if relative_root == "." and skipped(f):
                    continue
                if any(f.endswith(s) and f[: -len(s)] in databases for s in SIDE_SUFFIXES):
                    continue
                mode = os.lstat(path).st_mode
                if f in databases:
                    copy = os.path.join(work, "db")
                    copy_sqlite(path, copy)
                    info = tar.gettarinfo(copy, arcname=relative)
                    info.mode = stat.S_IMODE(mode)
                    with open(copy, "rb") as data:
                        tar.addfile(info, data)
                    counts["bytes"] += info.size
                    os.remove(copy)
                    counts["sqlite"] += 1
                elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                    tar.add(path, arcname=relative, recursive=False)
                    counts["bytes"] += os.lstat(path).st_size
                else:
                    print(f"skipped {relative}: not a file, directory or symlink", file=sys.stderr)
                    continue
                counts["files"] += 1
    shutil.rmtree(work)
    os.replace(partial, os.path.join(out_dir, name))
    size = os.path.getsize(os.path.join(out_dir, name))
    print(f"{counts['files']} files ({counts['sqlite']} SQLite databases through the backup API), "
          f"{counts['bytes']} bytes, {size} bytes compressed")
    print(name)
    return name


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: volume-snapshot.py VOLUME_DIR OUT_DIR")
    snapshot(sys.argv[1], sys.argv[2])
