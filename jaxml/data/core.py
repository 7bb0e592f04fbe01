"""Data-root resolution, checksummed files and downloads: the loader contract of jaxml.

Every real-data loader names its files (relative to the data root), their format, their public
source address and sha256. ``require_file`` returns the path when the file is present with the
right checksum; when absent it downloads (if the network allows and downloads are not disabled)
and otherwise raises ``DataNotFoundError`` with the directory to fill.

Environment:
  JAXML_DATA: the data root (default ``~/.cache/jaxml``).
  JAXML_REQUIRE_DATA=1: tests that need real data fail instead of skipping when it is missing.
  JAXML_OFFLINE=1 (or HF_HUB_OFFLINE=1): never attempt a download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

__all__ = [
    "DataNotFoundError",
    "DataFormatError",
    "data_root",
    "sha256sum",
    "download",
    "require_file",
    "data_required",
]


class DataNotFoundError(FileNotFoundError):
    """A data file is missing (or has the wrong checksum) and could not be downloaded."""


class DataFormatError(ValueError):
    """A data file exists but a row does not parse; the message names the path and line."""


def data_root() -> Path:
    """The data root: ``$JAXML_DATA`` if set, else ``~/.cache/jaxml``."""
    env = os.environ.get("JAXML_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jaxml"


def data_required() -> bool:
    """True when ``JAXML_REQUIRE_DATA=1``: tests must fail, not skip, on missing data."""
    return os.environ.get("JAXML_REQUIRE_DATA", "") not in ("", "0", "false", "False")


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("JAXML_OFFLINE", "HF_HUB_OFFLINE"))


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its sha256.

    Raises:
      DataNotFoundError: the download failed or the checksum did not match (the partial file is
        removed, ``dest`` is never left half-written).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        if sha256 is not None and (got := sha256sum(tmp)) != sha256:
            raise DataNotFoundError(f"downloaded {url} has sha256 {got}, expected {sha256}")
        os.replace(tmp, dest)
    except (OSError, ValueError) as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, DataNotFoundError):
            raise
        raise DataNotFoundError(f"could not download {url}: {e}") from e
    return dest


def require_file(relpath: str, *, source_url: str | None = None, sha256: str | None = None,
                 root: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """Return ``root/relpath`` after checking it exists (and its sha256), downloading if allowed.

    Args:
      relpath: path relative to the data root, e.g. ``"tinyshakespeare/input.txt"``.
      source_url: public address to download from when the file is absent.
      sha256: expected checksum (checked when ``verify``).
      root: data root (default ``data_root()``).
      verify: check the checksum of an existing file.

    Raises:
      DataNotFoundError: naming the file, the directory to fill and where the file comes from.
    """
    base = Path(root) if root is not None else data_root()
    path = base / relpath
    if path.is_file():
        if verify and sha256 is not None and (got := sha256sum(path)) != sha256:
            raise DataNotFoundError(
                f"{path} has sha256 {got}, expected {sha256}: the file is corrupt or a different "
                f"version; replace it with the one from {source_url or 'its public source'}")
        return path
    if source_url is not None and not _offline():
        try:
            return download(source_url, path, sha256=sha256)
        except DataNotFoundError:
            pass
    raise DataNotFoundError(
        f"missing data file {path}. Put it there (set JAXML_DATA to the folder that holds "
        f"'{relpath}'){' ; source: ' + source_url if source_url else ''}")
