"""Where FER2013 comes from: a local file, an http(s) URL pinned by sha256, or a Kaggle dataset.

`fetch(source)` returns a local path that fer3d.data.read_source can read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from ..config import outside_path
from ..io import atomic_path
from .fer2013 import DataError

# Looked for, in order, when data.source is "auto".
LOCAL_CANDIDATES = ("fer2013.csv.gz", "fer2013.csv", "fer2013.zip", "fer2013")
DEFAULT_KAGGLE = "kaggle:msambare/fer2013"

HOW_TO_PROVIDE = """FER2013 was not found. Provide it in one of these ways:
  1. put fer2013.csv (or .csv.gz) into {raw_dir}/ or into {shared_dir}/ ;
  2. set data.source in params.yaml to a local fer2013.csv/.csv.gz, the msambare zip or its
     unzipped folder (train/<emotion>/*.jpg, test/<emotion>/{{PublicTest,PrivateTest}}_*.jpg);
  3. set data.source to an https:// URL of the csv and data.sha256 to its checksum;
  4. set data.source: kaggle:msambare/fer2013 (or kaggle:<owner>/<dataset>) with Kaggle credentials
     in KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json (pip install kagglehub)."""


def fetch(source: str, *, sha256: str = "", search_dirs: list[Path], download_dir: Path) -> Path:
    """Resolve `source` ("auto", a path, a URL or kaggle:owner/name) to a local file or folder. A
    relative path is the workspace's (as data.shared_dir), also inside a queued experiment's copy;
    data.sha256, when set, is checked on whatever single file the source resolves to."""
    source = str(source).strip()
    if source.startswith(("http://", "https://")):
        return fetch_url(source, sha256, download_dir)
    if source == "auto":
        path = next((d / name for d in search_dirs for name in LOCAL_CANDIDATES if (d / name).exists()), None)
        if path is None and kaggle_credentials_present():
            path = fetch_kaggle(DEFAULT_KAGGLE.split(":", 1)[1])
        if path is None:
            raise DataError(HOW_TO_PROVIDE.format(raw_dir=search_dirs[0], shared_dir=search_dirs[-1]))
    elif source.startswith("kaggle:"):
        path = fetch_kaggle(source.split(":", 1)[1])
    else:
        path = outside_path(source)
        if not path.exists():
            raise DataError(
                f"data.source: {path} does not exist.\n"
                + HOW_TO_PROVIDE.format(raw_dir=search_dirs[0], shared_dir=search_dirs[-1])
            )
    if sha256:
        if path.is_dir():
            raise DataError(
                f"data.sha256 is set, but data.source {source!r} is the folder {path}: a checksum pins one "
                "file (a csv, csv.gz or zip); leave data.sha256 empty for a folder"
            )
        check_sha256(path, sha256)
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str, name: str | None = None) -> None:
    """`name`: what the message calls the file (the URL and final name, not a temporary file)."""
    found = sha256_of(path)
    if found != expected.lower():
        raise DataError(f"{name or path}: sha256 is {found}, expected {expected.lower()} (data.sha256)")


def fetch_url(url: str, sha256: str, download_dir: Path, timeout: float = 60) -> Path:
    """Download `url` once into download_dir; the sha256 is required, so a changed or
    tampered file is refused rather than silently trained on."""
    if not sha256:
        raise DataError(
            f"data.source is a URL ({url}) but data.sha256 is empty: "
            "set data.sha256 to the file's sha256 so the download can be verified"
        )
    name = Path(urllib.parse.urlparse(url).path).name or "fer2013.csv"
    target = download_dir / name
    if target.exists() and sha256_of(target) == sha256.lower():
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
            # raising here removes the temp file: nothing half-written
            check_sha256(tmp, sha256, name=f"{url} (for {target}, not kept)")
    except DataError:
        raise
    except OSError as e:  # URLError, HTTPError and timeouts are OSErrors
        raise DataError(f"{url}: download failed ({e})") from e
    return target


def kaggle_credentials_present() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").exists() or (config_dir / "access_token").exists()


def fetch_kaggle(handle: str) -> Path:
    """Download (or reuse from kagglehub's cache) a Kaggle dataset; return the FER2013 inside it."""
    try:
        import kagglehub
    except ImportError as e:
        raise DataError(f"data.source kaggle:{handle} needs the kagglehub client: pip install kagglehub") from e
    cached = newest_cached_version(handle)
    if cached is not None:  # kagglehub asks Kaggle for the newest version even when it has one: offline, use it
        print(f"kaggle:{handle}: the cached version {cached} (kaggle:{handle}/versions/{cached} pins it)")
        handle = f"{handle}/versions/{cached}"
    try:
        root = Path(kagglehub.dataset_download(handle))
    except Exception as e:  # kagglehub raises its own types for auth, network and 404
        raise DataError(
            f"kaggle:{handle}: download failed ({type(e).__name__}: {e}). Kaggle needs "
            "credentials in KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json"
        ) from e
    for name in LOCAL_CANDIDATES:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    raise DataError(
        f"kaggle:{handle}: downloaded to {root}, but it holds neither fer2013.csv nor train/ and test/ folders"
    )


def newest_cached_version(handle: str) -> int | None:
    """For an unversioned owner/name, the newest version kagglehub finished downloading into its
    cache (it writes <version>.complete beside versions/<version>/); None otherwise."""
    parts = handle.strip("/").split("/")
    if len(parts) != 2:
        return None
    try:
        from kagglehub.config import get_cache_folder
    except ImportError:
        return None
    folder = Path(get_cache_folder()) / "datasets" / parts[0] / parts[1]
    done = [
        int(m.stem) for m in folder.glob("*.complete") if m.stem.isdigit() and (folder / "versions" / m.stem).is_dir()
    ]
    return max(done, default=None)
