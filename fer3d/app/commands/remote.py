"""`fer3d remote dagshub|s3|local`: point DVC (and MLflow) at a remote, secrets kept out of git."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence


def add_remote(subparsers) -> None:
    remote = subparsers.add_parser(
        "remote",
        help="configure the DVC remote (DagsHub, S3-compatible, local folder)",
        description="Configure the DVC remote. Public settings go to .dvc/config (committed), "
        "credentials only to .dvc/config.local (git-ignored). Remotes verify downloads.",
    )
    kinds = remote.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default="origin", help="remote name (default: origin)")
        p.add_argument("--default", action="store_true", help="make it the default remote (core.remote)")
        p.add_argument(
            "--no-verify",
            dest="verify",
            action="store_false",
            help="do not re-hash downloads (DVC's default; a damaged remote object is then checked out)",
        )
        p.add_argument(
            "--repo-root", default=None, help="the DVC repository (default: the one holding the current directory)"
        )

    p = kinds.add_parser("dagshub", help="DagsHub's S3 gateway + the MLflow settings to export")
    p.add_argument("--owner", required=True, help="DagsHub user or organisation owning the repository")
    p.add_argument("--repo", required=True, help="DagsHub repository name")
    p.add_argument(
        "--token",
        default=None,
        help="DagsHub token (default: $DAGSHUB_USER_TOKEN, else the one saved by `dagshub login`)",
    )
    p.add_argument("--user", default=None, help="DagsHub username for MLflow (default: the owner)")
    p.add_argument("--show-token", action="store_true", help="print the token itself in the MLflow settings")
    common(p)
    p.set_defaults(func=cmd_remote_dagshub)

    p = kinds.add_parser("s3", help="any S3-compatible endpoint (AWS, MinIO, moto, ...)")
    p.add_argument("--url", required=True, help="s3://bucket[/prefix]")
    p.add_argument("--endpoint", default=None, help="http(s)://host[:port] (default: AWS)")
    p.add_argument(
        "--access-key-id", default=None, help="stored in .dvc/config.local (default: AWS_ACCESS_KEY_ID at push time)"
    )
    p.add_argument("--secret-access-key", default=None, help="stored in .dvc/config.local")
    common(p)
    p.set_defaults(func=cmd_remote_s3)

    p = kinds.add_parser("local", help="a folder on this machine or a mounted share")
    p.add_argument("path", metavar="PATH", help="the folder (relative: from the current directory)")
    common(p)
    p.set_defaults(func=cmd_remote_local)


def _root(args):
    from fer3d.app.remote import find_dvc_root

    return find_dvc_root(args.repo_root)


def _report(root, setup, secrets: Sequence[str] = ()) -> None:
    from fer3d.app.remote import NotAGitRepository, RemoteSetupError, check_no_secrets

    print(
        f"DVC remote {setup.name!r}: {setup.url}"
        + (f" via {setup.options['endpointurl']}" if "endpointurl" in setup.options else "")
        + f" (in {root / '.dvc' / 'config'}{', default' if setup.default else ''})"
    )
    if setup.local_keys:
        print(f"credentials ({', '.join(setup.local_keys)}): only in {root / '.dvc' / 'config.local'} (git-ignored)")
    for hint in setup.hints:
        print(f"note: {hint}")
    try:
        findings = check_no_secrets(root, secrets)
    except NotAGitRepository:  # nothing can be committed by mistake
        findings = []
    except RemoteSetupError as e:  # git missing or failing: say the check did not run
        findings = [f"could not check git-tracked files for secrets: {e}"]
    for finding in findings:
        print(f"warning: {finding}", file=sys.stderr)


def cmd_remote_dagshub(args) -> int:
    from fer3d.app.remote import configure_dagshub, dagshub_mlflow_env, resolve_dagshub_token

    root = _root(args)
    token = resolve_dagshub_token(args.token)
    setup = configure_dagshub(
        root, args.owner, args.repo, token=token, name=args.name, default=args.default, verify=args.verify
    )
    _report(root, setup, [token] if token else [])
    shown_token = token if args.show_token else None
    env = dagshub_mlflow_env(args.owner, args.repo, shown_token, user=args.user)
    print(f"MLflow settings to export (or DAGSHUB_REPO={args.owner}/{args.repo} with DAGSHUB_USER_TOKEN):")
    for key, value in env.items():
        # the placeholder stays unquoted so that the shell expands it; a real token is quoted
        placeholder = key == "MLFLOW_TRACKING_PASSWORD" and shown_token is None
        print(f"  export {key}={value if placeholder else shlex.quote(value)}")
    if token and not args.show_token and not os.environ.get("DAGSHUB_USER_TOKEN"):
        print("  (export DAGSHUB_USER_TOKEN=<your token> first, or rerun with --show-token)")
    return 0


def cmd_remote_s3(args) -> int:
    from fer3d.app.remote import configure_s3

    root = _root(args)
    setup = configure_s3(
        root,
        args.url,
        endpoint=args.endpoint,
        access_key_id=args.access_key_id,
        secret_access_key=args.secret_access_key,
        name=args.name,
        default=args.default,
        verify=args.verify,
    )
    _report(root, setup, [s for s in (args.access_key_id, args.secret_access_key) if s])
    return 0


def cmd_remote_local(args) -> int:
    from fer3d.app.remote import configure_local

    root = _root(args)
    setup = configure_local(root, args.path, name=args.name, default=args.default, verify=args.verify)
    _report(root, setup)
    return 0
