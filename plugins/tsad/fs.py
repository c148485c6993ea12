"""Local folders or object storage (``s3://``, ``gs://``, ...) behind one small set of helpers.

``data_dir`` and ``models_dir`` are a local path, a ``file://`` URL (the same as the path), or an
fsspec URL such as ``s3://bucket/tsad/data``: then workers share no disk, only the bucket. This is
what Airflow's ``ObjectStoragePath`` does too (it is fsspec underneath), without importing Airflow
into the core. A *location* is a ``Path`` when local and a URL string when remote; callers keep
their local code (atomic rename, fsync) and branch on :func:`is_remote` for the rest.

Every file tsad writes goes through :func:`atomic_output` (or the helpers on top of it): the
new content is written beside the target and renamed over it (object storage: uploaded in one
PUT), so a reader, a concurrent re-run or a killed task never sees half a file.

Credentials come from the filesystem's usual sources (for S3: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance roles). ``TSAD_S3_ENDPOINT_URL`` (else
``AWS_ENDPOINT_URL``) points S3 at a compatible server (MinIO, Ceph, moto). Listings are never
cached: another worker may have published since.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Location = Path | str


def is_remote(location: str | Path) -> bool:
    """True for object storage URLs; local paths and ``file://`` URLs are local."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def location(base: str | Path, *parts: str) -> Location:
    """``base`` joined with ``parts``: a ``Path`` when local, a ``/``-joined URL when remote."""
    text = str(base)
    if is_remote(text):
        return "/".join([text.rstrip("/"), *parts])
    if text.startswith("file://"):
        text = text[len("file://"):]
    return Path(text).joinpath(*parts)


def parent(loc: Location) -> Location:
    return loc.rsplit("/", 1)[0] if isinstance(loc, str) else loc.parent


def name(loc: Location) -> str:
    return loc.rsplit("/", 1)[1] if isinstance(loc, str) else loc.name


def with_name(loc: Location, new: str) -> Location:
    return f"{parent(loc)}/{new}" if isinstance(loc, str) else loc.with_name(new)


def storage_options(protocol: str) -> dict[str, Any]:
    """Options for the fsspec filesystem of ``protocol``: the S3 endpoint, no listing cache."""
    options: dict[str, Any] = {"use_listings_cache": False}
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("TSAD_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
    return options


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path within it (``bucket/key`` for S3)."""
    import fsspec

    protocol = url.split("://", 1)[0]
    return fsspec.core.url_to_fs(url, **storage_options(protocol))


def is_file(loc: Location) -> bool:
    if isinstance(loc, Path):
        return loc.is_file()
    fs, path = filesystem(loc)
    return bool(fs.isfile(path))


def read_bytes(loc: Location) -> bytes:
    if isinstance(loc, Path):
        return loc.read_bytes()
    fs, path = filesystem(loc)
    return bytes(fs.cat_file(path))


def write_bytes(loc: str, data: bytes, *, create_only: bool = False) -> bool:
    """One PUT of ``data`` to a remote ``loc`` (atomic per object: readers see all or nothing).

    With ``create_only`` the write is conditional (S3 ``If-None-Match: *``, GCS
    ``ifGenerationMatch=0``) and returns False, writing nothing, when the object already exists.
    """
    fs, path = filesystem(loc)
    if not create_only:
        fs.pipe_file(path, data)
        return True
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    return True


def upload(local: Path, loc: str) -> None:
    """Copy a local file to a remote ``loc`` (a multipart upload also appears all at once)."""
    fs, path = filesystem(loc)
    fs.put_file(str(local), path)


def download(loc: str, local: Path) -> None:
    fs, path = filesystem(loc)
    fs.get_file(path, str(local))


def glob(loc: str, pattern: str) -> list[str]:
    """Remote URLs under ``loc`` matching ``pattern`` (``*`` within one path segment)."""
    fs, path = filesystem(loc)
    protocol = loc.split("://", 1)[0]
    return [f"{protocol}://{p}" for p in sorted(fs.glob(f"{path.rstrip('/')}/{pattern}"))]


def remove(loc: str) -> None:
    fs, path = filesystem(loc)
    fs.rm_file(path)


def local_scratch(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A local temporary folder to build files in before they are uploaded."""
    return tempfile.TemporaryDirectory(prefix=prefix)


@contextmanager
def atomic_output(loc: Location) -> Iterator[Path]:
    """A local path to write ``loc``'s new content to; when the block succeeds it replaces
    ``loc`` whole (a temporary file in the same folder, fsync, rename, fsync of the folder;
    object storage: one upload), when it fails nothing changes."""
    if is_remote(loc):
        with local_scratch("tsad-") as scratch:
            local = Path(scratch) / name(loc)
            yield local
            upload(local, str(loc))
        return
    path = Path(loc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # like a plain write: plots are served by other processes
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(loc: Location, data: bytes) -> None:
    """``data`` as the whole new content of ``loc`` (:func:`atomic_output`)."""
    with atomic_output(loc) as tmp:
        tmp.write_bytes(data)


def write_json(loc: Location, data: Any) -> None:
    """``data`` as indented, key-sorted JSON at ``loc``, atomically."""
    write_bytes_atomic(loc, json.dumps(data, indent=2, sort_keys=True).encode())


def read_json(loc: Location) -> Any:
    return json.loads(read_bytes(loc))


def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
