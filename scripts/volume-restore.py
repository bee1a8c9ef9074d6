"""Puts a snapshot written by volume-snapshot.py back onto an app volume,
without destroying what is there: the current contents are moved aside into
VOLUME_DIR/.pre-restore-<stamp>/ (on the same volume; remove it when satisfied).

usage: python3 volume-restore.py ARCHIVE VOLUME_DIR

Order: check every member of the archive (relative paths inside the volume;
files, directories, and symlinks that stay inside), unpack into a staging
directory on the volume, check each SQLite database with integrity_check, and
only then swap by rename. A failure before the swap leaves the volume as it
was (the staging directory is removed); a failure during the swap moves the
entries back. Runs as the app's user while the app is stopped.
"""
import datetime
import os
import shutil
import sqlite3
import sys
import tarfile

SQLITE_HEADER = b"SQLite format 3\x00"
KEPT_TOP = ("lost+found",)
KEPT_PREFIXES = (".pre-restore-", ".restore-")


def inside(base, relative):
    target = os.path.normpath(os.path.join(base, relative))
    return target == base or target.startswith(base + os.sep)


def checked_members(tar, base):
    members = []
    for m in tar.getmembers():
        name = os.path.normpath(m.name)
        if os.path.isabs(m.name) or name == ".." or name.startswith(".." + os.sep) or not inside(base, name):
            raise ValueError(f"{m.name}: outside the volume")
        if m.issym():
            if os.path.isabs(m.linkname) or not inside(base, os.path.join(os.path.dirname(name), m.linkname)):
                raise ValueError(f"{m.name}: a symlink that leads outside the volume ({m.linkname})")
        elif not (m.isfile() or m.isdir()):
            raise ValueError(f"{m.name}: neither a file, a directory nor a symlink")
        members.append(m)
    return members


def check_databases(staging):
    count = 0
    for root, _, files in os.walk(staging):
        for f in files:
            path = os.path.join(root, f)
            if os.path.islink(path):
                continue
            with open(path, "rb") as data:
                if data.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                    continue
            db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
            try:
                result = db.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                db.close()
            if result != "ok":
                raise RuntimeError(f"{os.path.relpath(path, staging)}: integrity_check says {result}")
            count += 1
    return count


def kept(name):
    return name in KEPT_TOP or name.startswith(KEPT_PREFIXES)


def restore(archive, volume_dir):
    volume_dir = os.path.abspath(volume_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    staging = os.path.join(volume_dir, f".restore-{stamp}")
    aside = os.path.join(volume_dir, f".pre-restore-{stamp}")
    os.mkdir(staging, 0o770)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = checked_members(tar, staging)
            tar.extractall(staging, members=members)
        databases = check_databases(staging)
    except BaseException:
        shutil.rmtree(staging)
        raise
    current = sorted(n for n in os.listdir(volume_dir) if not kept(n))
    restored = sorted(os.listdir(staging))
    os.mkdir(aside, 0o770)
    moved_aside, moved_in = [], []
    try:
        for n in current:
            os.rename(os.path.join(volume_dir, n), os.path.join(aside, n))
            moved_aside.append(n)
        for n in restored:
            os.rename(os.path.join(staging, n), os.path.join(volume_dir, n))
            moved_in.append(n)
    except BaseException:
        for n in moved_in:
            os.rename(os.path.join(volume_dir, n), os.path.join(staging, n))
        for n in moved_aside:
            os.rename(os.path.join(aside, n), os.path.join(volume_dir, n))
        raise
    os.rmdir(staging)
    print(f"restored {len(members)} entries ({databases} SQLite databases pass integrity_check) from {os.path.basename(archive)}")
    print(f"the previous contents ({len(current)} entries) are in {aside}: remove it when the app works")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: volume-restore.py ARCHIVE VOLUME_DIR")
    restore(sys.argv[1], sys.argv[2])
