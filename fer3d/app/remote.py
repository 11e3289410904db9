"""DVC remote setup (DagsHub, any S3-compatible endpoint, a local folder) that keeps secrets out of git.

Public settings (url, endpointurl, verify) go to `.dvc/config`, which is committed; credentials go
only to `.dvc/config.local`, which `dvc init` git-ignores. Every remote gets `verify = true`: with
DVC's default (false) a `dvc pull` copies a damaged remote object into the cache and checks it out
without complaint; with it, DVC re-hashes what it downloads and refuses the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..config import DAGSHUB_HOST

# seconds: an endpoint that accepts connections and never answers otherwise holds `dvc push` for
# minutes with no output (botocore's defaults are 60 s per read, several attempts)
S3_TIMEOUTS = {"connect_timeout": "10", "read_timeout": "20"}

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Keys that hold credentials in a DVC remote section (s3, http, ssh, webdav, azure, gdrive, oss).
SECRET_KEYS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "password",
    "token",
    "account_key",
    "sas_token",
    "connection_string",
    "client_secret",
    "gdrive_client_secret",
    "oss_key_secret",
    "oss_key_id",
    "passphrase",
)


class RemoteSetupError(ValueError):
    """Bad input for a remote, or a repository we cannot configure; the message says which."""


class NotAGitRepository(RemoteSetupError):
    """The DVC root is not inside a git work tree: no file can be committed by mistake."""


@dataclass
class RemoteSetup:
    """What was written: public options to .dvc/config, credential key names to .dvc/config.local."""

    name: str
    url: str
    options: dict[str, str]
    local_keys: list[str] = field(default_factory=list)
    default: bool = False
    hints: list[str] = field(default_factory=list)


# -- validation -------------------------------------------------------------------------------------
def _check_name(value: str, what: str) -> str:
    if not value or not _NAME.match(value):
        raise RemoteSetupError(f"{what} must be letters, digits, '_', '.' or '-', found {value!r}")
    return value


def _check_remote_name(name: str) -> str:
    return _check_name(name, "remote name").lower()  # dvc lower-cases remote names too


def _check_s3_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise RemoteSetupError(f"--url must be s3://bucket[/prefix], found {url!r}")
    if not _BUCKET.match(parsed.netloc):
        raise RemoteSetupError(f"--url: bucket {parsed.netloc!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    return url.rstrip("/")


def _check_endpoint(endpoint: str) -> str:
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RemoteSetupError(f"--endpoint must be http(s)://host[:port][/path], found {endpoint!r}")
    return endpoint.rstrip("/")


def _check_secret(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value or any(c.isspace() for c in value):
        raise RemoteSetupError(f"{what} must be non-empty and without spaces or newlines")
    return value


# -- the repository ---------------------------------------------------------------------------------
def find_dvc_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above `start` (default: the current directory) holding `.dvc/`."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    raise RemoteSetupError(
        f"no DVC repository at or above {here} (no .dvc/ folder); run `dvc init` there first or pass --repo-root"
    )


def _config(repo_root: Path):
    from dvc.config import Config

    dvc_dir = Path(repo_root) / ".dvc"
    if not dvc_dir.is_dir():
        raise RemoteSetupError(f"{repo_root}: not a DVC repository (no .dvc/ folder); run `dvc init` first")
    return Config(dvc_dir=str(dvc_dir))


def _write(repo_root: Path, setup: RemoteSetup, secrets: dict[str, str]) -> RemoteSetup:
    """The same edits as `dvc remote add --force` + `dvc remote modify [--local]` (with DVC's
    schema validation), done through dvc's config API in this process. A remote set up again under
    its name keeps none of its old keys in config.local (they would go to the new host, or outrank
    the environment a keyless setup relies on); if DVC refuses the result, both files are put back
    as they were (dvc saves a level before it checks the levels above it)."""
    from dvc.config import ConfigError

    local_file = repo_root / ".dvc" / "config.local"
    before = {f: f.read_bytes() if f.exists() else None for f in (repo_root / ".dvc" / "config", local_file)}
    try:
        config = _config(repo_root)
        if setup.name in config.read("local").get("remote", {}):
            with config.edit("local") as conf:
                del conf["remote"][setup.name]
        with config.edit("repo") as conf:
            conf["remote"][setup.name] = {"url": setup.url, **setup.options}
            if setup.default:
                conf["core"]["remote"] = setup.name
        if secrets:
            with config.edit("local") as conf:
                conf["remote"][setup.name] = dict(secrets)
            local_file.chmod(0o600)  # credentials: readable by their owner only
    except ConfigError as e:
        for f, content in before.items():
            if content is None:
                f.unlink(missing_ok=True)
            else:
                f.write_bytes(content)
        raise RemoteSetupError(f"{repo_root / '.dvc' / 'config'}: dvc refused the remote: {e}") from e
    setup.local_keys = sorted(secrets)
    if not setup.default and not config.read().get("core", {}).get("remote"):
        setup.hints.append(f"no default remote: use `dvc push -r {setup.name}`, or rerun with --default")
    return setup


# -- the three kinds --------------------------------------------------------------------------------
def stored_dagshub_token() -> str | None:
    """A token saved by `dagshub login`, read from the client's cache file without any network call
    (the client's own get_token validates online and may start an OAuth flow). None if absent."""
    try:
        from dagshub.auth.tokens import TokenStorage
        from dagshub.common import config

        storage = TokenStorage(cache_location=os.environ.get("DAGSHUB_CLIENT_TOKENS_CACHE") or config.cache_location)
        tokens = sorted(storage._token_cache.get(config.host, []), key=lambda t: t.priority)
        return next((t.token_text for t in tokens if not t.is_expired), None)
    except Exception:
        return None


def resolve_dagshub_token(token: str | None = None) -> str | None:
    """`token`, else DAGSHUB_USER_TOKEN, else the token saved by `dagshub login`, else None."""
    return _check_secret(token, "--token") or os.environ.get("DAGSHUB_USER_TOKEN") or stored_dagshub_token()


def dagshub_mlflow_env(owner: str, repo: str, token: str | None = None, user: str | None = None) -> dict[str, str]:
    """The MLflow variables for a DagsHub repository; the password is the token or a placeholder."""
    return {
        "MLFLOW_TRACKING_URI": f"{DAGSHUB_HOST}/{owner}/{repo}.mlflow",
        "MLFLOW_TRACKING_USERNAME": user or owner,
        "MLFLOW_TRACKING_PASSWORD": token if token is not None else "$DAGSHUB_USER_TOKEN",
    }


def configure_dagshub(
    repo_root: str | os.PathLike,
    owner: str,
    repo: str,
    token: str | None = None,
    name: str = "origin",
    default: bool = False,
    verify: bool = True,
) -> RemoteSetup:
    """DagsHub's S3 gateway: url s3://dvc, endpointurl https://dagshub.com/<owner>/<repo>.s3 and the
    token as both keys in .dvc/config.local. `token` None: DAGSHUB_USER_TOKEN, else the token saved by
    `dagshub login`, else none (a hint says how to add one)."""
    owner, repo = _check_name(owner, "--owner"), _check_name(repo, "--repo")
    token = resolve_dagshub_token(token)
    setup = RemoteSetup(
        _check_remote_name(name),
        "s3://dvc",
        {"endpointurl": f"{DAGSHUB_HOST}/{owner}/{repo}.s3", "verify": str(bool(verify)).lower(), **S3_TIMEOUTS},
        default=default,
    )
    secrets = {"access_key_id": token, "secret_access_key": token} if token else {}
    if not token:
        setup.hints.append(
            "no DagsHub token: pass --token, set DAGSHUB_USER_TOKEN or run `dagshub login`, "
            "then rerun; until then DagsHub refuses push (and pull of private repos)"
        )
    return _write(Path(repo_root), setup, secrets)


def configure_s3(
    repo_root: str | os.PathLike,
    url: str,
    endpoint: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    name: str = "origin",
    default: bool = False,
    verify: bool = True,
) -> RemoteSetup:
    """Any S3-compatible store. Keys, if given, go to .dvc/config.local; else DVC uses
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS profile at push/pull time."""
    options = {"verify": str(bool(verify)).lower(), **S3_TIMEOUTS}
    if endpoint:
        options = {"endpointurl": _check_endpoint(endpoint), **options}
    access_key_id = _check_secret(access_key_id, "--access-key-id")
    secret_access_key = _check_secret(secret_access_key, "--secret-access-key")
    if (access_key_id is None) != (secret_access_key is None):
        raise RemoteSetupError(
            "give both --access-key-id and --secret-access-key, or neither "
            "(then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are used)"
        )
    setup = RemoteSetup(_check_remote_name(name), _check_s3_url(url), options, default=default)
    secrets = {"access_key_id": access_key_id, "secret_access_key": secret_access_key} if access_key_id else {}
    if not secrets:
        setup.hints.append(
            "no keys stored: dvc will use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "or the AWS profile when it pushes and pulls"
        )
    return _write(Path(repo_root), setup, secrets)


def configure_local(
    repo_root: str | os.PathLike,
    path: str | os.PathLike,
    name: str = "origin",
    default: bool = False,
    verify: bool = True,
) -> RemoteSetup:
    """A folder on this machine (or a mounted share). A relative path is taken from the current
    directory and stored relative to .dvc/, as `dvc remote add` does."""
    from dvc.config_schema import RelPath

    text = str(path)
    if not text.strip():
        raise RemoteSetupError("PATH must be a folder, found an empty string")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise RemoteSetupError(
            f"PATH must be a local folder, found the URL {text!r}; use `fer3d remote s3` for s3:// remotes"
        )
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        raise RemoteSetupError(f"PATH {folder} exists and is not a folder")
    root = Path(repo_root).resolve()
    cache, where = root / ".dvc" / "cache", folder.resolve()
    if where in (cache, root, root / ".dvc") or cache in where.parents:
        raise RemoteSetupError(
            f"PATH {folder} is this project's DVC cache ({cache}) or holds it: pushing there copies nothing "
            "anywhere else, so it is no backup; give a folder outside the project (another disk, a share)"
        )
    url = str(folder) if folder.is_absolute() else RelPath(os.path.abspath(folder))
    setup = RemoteSetup(_check_remote_name(name), url, {"verify": str(bool(verify)).lower()}, default=default)
    _write(Path(repo_root), setup, {})
    setup.url = str(Path(os.path.abspath(folder)))
    return setup


# -- secrets check ----------------------------------------------------------------------------------
def _git(repo_root: Path, *args: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["git", *args], cwd=repo_root, input=stdin, capture_output=True, timeout=60)
    except FileNotFoundError as e:
        raise RemoteSetupError("git not found on PATH; cannot check tracked files for secrets") from e
    if check and result.returncode != 0:
        raise RemoteSetupError(
            f"{repo_root}: `git {' '.join(args)}` failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result


def _mask(secret: str) -> str:
    return secret[:2] + "*" * max(3, len(secret) - 2) if len(secret) > 6 else "*" * len(secret)


def local_secrets(repo_root: str | os.PathLike) -> list[str]:
    """Credential values stored in .dvc/config.local (what must never appear in tracked files)."""
    from dvc.config import Config

    try:  # read as is, without DVC's schema check: a broken config must not hide its secrets
        conf = Config.load_file(str(Path(repo_root) / ".dvc" / "config.local"))
    except Exception:
        return []
    return [str(v) for section in conf.get("remote", {}).values() for k, v in section.items() if k in SECRET_KEYS and v]


def check_no_secrets(repo_root: str | os.PathLike, secrets: Iterable[str] = ()) -> list[str]:
    """Findings (empty when clean): git-tracked files (their staged content, what a commit would
    hold) containing one of `secrets` or a credential stored in .dvc/config.local, and credential
    entries (access_key_id, secret_access_key, password, ...) in .dvc/config or its staged copy.
    Findings name the file and a masked secret, never the secret itself."""
    root = Path(repo_root).resolve()
    inside = _git(root, "rev-parse", "--git-dir", check=False)
    if inside.returncode != 0:
        raise NotAGitRepository(f"{root}: not in a git repository ({inside.stderr.decode(errors='replace').strip()})")
    findings = []
    values = sorted({s for s in (*secrets, *local_secrets(root)) if s and len(s) >= 4})
    for secret in values:
        # the pattern comes on stdin so the secret never shows in a process list
        # the whole repository (":/"), also when the DVC root is a subfolder of it (`dvc init --subdir`)
        hits = _git(
            root,
            *("grep", "--cached", "-l", "--full-name", "-F", "-f", "/dev/stdin", "--", ":/"),
            check=False,
            stdin=secret.encode() + b"\n",
        )
        if hits.returncode not in (0, 1):
            raise RemoteSetupError(f"{root}: git grep failed: {hits.stderr.decode(errors='replace').strip()}")
        for path in hits.stdout.decode(errors="replace").splitlines():
            findings.append(f"{path}: contains the secret {_mask(secret)} (git-tracked)")
    pattern = re.compile(rf"^\s*({'|'.join(SECRET_KEYS)})\s*=", re.MULTILINE)
    config_path = root / ".dvc" / "config"
    texts = {"working tree": config_path.read_text() if config_path.exists() else ""}
    staged = _git(root, "show", ":./.dvc/config", check=False)  # ./: relative to the DVC root, not git's
    if staged.returncode == 0:
        texts["staged"] = staged.stdout.decode(errors="replace")
    for where, text in texts.items():
        for match in pattern.finditer(text):
            findings.append(
                f".dvc/config ({where}): has a {match.group(1)} entry; credentials belong "
                f"in .dvc/config.local (dvc remote modify --local)"
            )
    ignored = _git(root, "check-ignore", "-q", ".dvc/config.local", check=False)
    tracked = _git(root, "ls-files", "--error-unmatch", ".dvc/config.local", check=False)
    if tracked.returncode == 0:
        findings.append(".dvc/config.local: is git-tracked; run `git rm --cached .dvc/config.local`")
    elif ignored.returncode != 0 and (root / ".dvc" / "config.local").exists():
        findings.append(".dvc/config.local: is not git-ignored; add `/config.local` to .dvc/.gitignore")
    return findings
