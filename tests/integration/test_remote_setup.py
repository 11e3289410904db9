"""`fer3d remote ...` on real git+dvc repositories: what lands in .dvc/config (committed) and in
.dvc/config.local (git-ignored), the printed MLflow settings, input errors, and a dvc push/pull
round trip through a local S3 server (moto), including a damaged object on the remote."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer3d.app.cli import main
from fer3d.app.remote import check_no_secrets

BIN = Path(sys.executable).parent
SECRET = "SECRET123"


def run(cmd, cwd, check=True, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def dvc(repo, *args, check=True):
    return run([str(BIN / "dvc"), *args], repo, check=check)


def git(repo, *args, check=True):
    return run(["git", *args], repo, check=check)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in ("DAGSHUB_USER_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "FER3D_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DAGSHUB_CLIENT_TOKENS_CACHE", str(tmp_path / "no-dagshub-tokens.yaml"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory):
    """git init + dvc init once per module; each test gets a copy."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    dvc(repo, "init", "-q")
    return repo


@pytest.fixture
def repo(template_repo, tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    shutil.copytree(template_repo, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def assert_secret_only_local(repo: Path, secret: str, keys=("access_key_id", "secret_access_key")) -> None:
    config = (repo / ".dvc" / "config").read_text()
    local = (repo / ".dvc" / "config.local").read_text()
    assert secret not in config and not any(k in config for k in keys), config
    for key in keys:
        assert f"{key} = {secret}" in local, local
    assert git(repo, "check-ignore", "-q", ".dvc/config.local", check=False).returncode == 0
    git(repo, "add", "-A")
    assert ".dvc/config.local" not in git(repo, "ls-files").stdout
    assert check_no_secrets(repo, [secret]) == []


def test_dagshub_in_process(repo, capsys):
    assert main(["remote", "dagshub", "--owner", "alice", "--repo", "fer3d", "--token", SECRET, "--default"]) == 0
    out = capsys.readouterr().out
    config = (repo / ".dvc" / "config").read_text()
    assert "url = s3://dvc" in config and "endpointurl = https://dagshub.com/alice/fer3d.s3" in config
    assert "remote = origin" in config and "verify = true" in config
    assert "connect_timeout = 10" in config and "read_timeout = 20" in config  # no silent 7-minute hang
    assert_secret_only_local(repo, SECRET)
    assert "export MLFLOW_TRACKING_URI=https://dagshub.com/alice/fer3d.mlflow" in out
    assert "export MLFLOW_TRACKING_USERNAME=alice" in out
    assert "export MLFLOW_TRACKING_PASSWORD=$DAGSHUB_USER_TOKEN" in out
    assert SECRET not in out
    # dvc itself reads it back as one remote, with the keys merged from config.local
    listed = dvc(repo, "remote", "list").stdout
    assert "origin" in listed and "s3://dvc" in listed


def test_dagshub_installed_executable(repo, tmp_path):
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    result = run(
        [
            str(BIN / "fer3d"),
            "remote",
            "dagshub",
            "--owner",
            "alice",
            "--repo",
            "fer3d",
            "--token",
            SECRET,
            "--show-token",
            "--name",
            "DagsHub",
            "--repo-root",
            str(repo),
        ],
        other_dir,
    )
    assert "export MLFLOW_TRACKING_PASSWORD=SECRET123" in result.stdout  # asked for with --show-token
    assert "export MLFLOW_TRACKING_URI=https://dagshub.com/alice/fer3d.mlflow" in result.stdout
    config = (repo / ".dvc" / "config").read_text()
    assert "['remote \"dagshub\"']" in config and "remote = " not in config  # no --default
    assert "no default remote" in result.stdout
    assert_secret_only_local(repo, SECRET)


def test_dagshub_token_from_env_then_from_dagshub_login_then_none(repo, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSHUB_USER_TOKEN", "ENVTOKEN42")
    main(["remote", "dagshub", "--owner", "alice", "--repo", "fer3d"])
    assert "ENVTOKEN42" not in capsys.readouterr().out
    assert_secret_only_local(repo, "ENVTOKEN42")

    monkeypatch.delenv("DAGSHUB_USER_TOKEN")
    from dagshub.auth.tokens import TokenStorage  # what `dagshub login --token` writes, offline

    cache = tmp_path / "dagshub-tokens.yaml"
    TokenStorage(cache_location=str(cache)).add_token("LOGINTOKEN7", skip_validation=True)
    monkeypatch.setenv("DAGSHUB_CLIENT_TOKENS_CACHE", str(cache))
    main(["remote", "dagshub", "--owner", "alice", "--repo", "fer3d", "--name", "second"])
    assert "access_key_id = LOGINTOKEN7" in (repo / ".dvc" / "config.local").read_text()

    monkeypatch.setenv("DAGSHUB_CLIENT_TOKENS_CACHE", str(tmp_path / "none.yaml"))
    main(["remote", "dagshub", "--owner", "bob", "--repo", "r", "--name", "third"])
    out = capsys.readouterr().out
    assert "no DagsHub token" in out and "MLFLOW_TRACKING_PASSWORD=$DAGSHUB_USER_TOKEN" in out
    local = (repo / ".dvc" / "config.local").read_text()
    assert '"third"' not in local and check_no_secrets(repo, ["ENVTOKEN42", "LOGINTOKEN7"]) == []


def test_s3_with_keys_and_without(repo, capsys):
    main(
        [
            "remote",
            "s3",
            "--url",
            "s3://bucket-1/dvc/",
            "--endpoint",
            "http://127.0.0.1:5000",
            "--access-key-id",
            "AKIDEXAMPLE",
            "--secret-access-key",
            "wJalrXUtnFEMIK7MDENG",
            "--default",
        ]
    )
    config = (repo / ".dvc" / "config").read_text()
    assert "url = s3://bucket-1/dvc\n" in config and "endpointurl = http://127.0.0.1:5000" in config
    local = (repo / ".dvc" / "config.local").read_text()
    assert "access_key_id = AKIDEXAMPLE" in local and "secret_access_key = wJalrXUtnFEMIK7MDENG" in local
    assert "AKIDEXAMPLE" not in config and "wJalrXUtnFEMIK7MDENG" not in config
    git(repo, "add", "-A")
    assert check_no_secrets(repo) == []  # the values in config.local are checked without being named
    assert "wJalrXUtnFEMIK7MDENG" not in capsys.readouterr().out

    main(["remote", "s3", "--url", "s3://bucket-2", "--name", "aws"])
    out = capsys.readouterr().out
    assert "AWS_ACCESS_KEY_ID" in out  # the hint: keys come from the environment
    config = (repo / ".dvc" / "config").read_text()
    assert "['remote \"aws\"']\n    url = s3://bucket-2\n    verify = true" in config


def test_local_remote_relative_path_and_push(repo, tmp_path, capsys):
    main(["remote", "local", "../store", "--default"])
    config = (repo / ".dvc" / "config").read_text()
    assert "url = ../../store" in config  # relative to .dvc/, as `dvc remote add` stores it
    (repo / "a.txt").write_text("hello\n")
    dvc(repo, "add", "-q", "a.txt")
    dvc(repo, "push", "-q")
    assert len([p for p in (tmp_path / "store").rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dagshub", "--owner", "al ice", "--repo", "fer3d"], "--owner must be letters, digits"),
        (["dagshub", "--owner", "alice", "--repo", "fer3d/x"], "--repo must be letters, digits"),
        (["dagshub", "--owner", "alice", "--repo", "r", "--token", "a b"], "--token must be non-empty"),
        (["s3", "--url", "http://bucket/x"], "--url must be s3://bucket[/prefix], found 'http://bucket/x'"),
        (["s3", "--url", "fer3d-test/dvc"], "--url must be s3://bucket[/prefix]"),
        (["s3", "--url", "s3://Bad_Bucket"], "not a valid S3 bucket name"),
        (["s3", "--url", "s3://b1b/x", "--endpoint", "127.0.0.1:5000"], "--endpoint must be http(s)://"),
        (["s3", "--url", "s3://b1b/x", "--access-key-id", "k"], "give both --access-key-id and --secret-access-key"),
        (["local", "s3://b1b/x"], "use `fer3d remote s3`"),
        (["local", ".dvc/cache"], "is this project's DVC cache"),  # a push there would back up nothing
        (["local", "."], "or holds it: pushing there copies nothing anywhere else"),
        (["s3", "--url", "s3://b1b", "--name", "my remote"], "remote name must be"),
    ],
)
def test_bad_input_is_a_clear_error(repo, argv, message):
    before = (repo / ".dvc" / "config").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["remote", *argv])
    assert message in str(exc.value.code) and str(exc.value.code).startswith(f"fer3d remote {argv[0]}: error:")
    assert (repo / ".dvc" / "config").read_text() == before and not (repo / ".dvc" / "config.local").exists()


def test_outside_a_dvc_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no DVC repository at or above"):
        main(["remote", "local", "/tmp/x"])


def test_check_no_secrets_reports_leaks_without_repeating_them(repo):
    main(["remote", "dagshub", "--owner", "alice", "--repo", "fer3d", "--token", SECRET])
    (repo / "notes.md").write_text(f"my token is {SECRET}\n")
    with open(repo / ".dvc" / "config", "a") as f:
        f.write("['remote \"leak\"']\n    url = s3://leak\n    password = hunter2\n")
    git(repo, "add", "-A")
    findings = check_no_secrets(repo)
    assert any(f.startswith("notes.md: contains the secret") for f in findings), findings
    assert any(".dvc/config (staged): has a password entry" in f for f in findings), findings
    assert any(".dvc/config (working tree): has a password entry" in f for f in findings), findings
    assert not any(SECRET in f for f in findings)
    git(repo, "add", "-f", ".dvc/config.local")
    assert any("config.local: is git-tracked" in f for f in check_no_secrets(repo))


def test_a_remote_set_up_again_keeps_none_of_its_old_keys(repo, capsys):
    main(["remote", "s3", "--url", "s3://bucket-a", "--access-key-id", "AKIAOLDKEY", "--secret-access-key", SECRET])
    local_file = repo / ".dvc" / "config.local"
    assert local_file.stat().st_mode & 0o777 == 0o600  # credentials readable by their owner only
    # the same name without keys: the environment's keys must not be outranked by the old ones
    main(["remote", "s3", "--url", "s3://bucket-b"])
    assert "AKIAOLDKEY" not in local_file.read_text() and SECRET not in local_file.read_text()
    assert "AWS_ACCESS_KEY_ID" in capsys.readouterr().out
    # and on to a folder: no S3 key left over for DVC to refuse
    main(["remote", "local", "../store"])
    assert "url = ../../store" in (repo / ".dvc" / "config").read_text()
    assert "origin" in dvc(repo, "remote", "list").stdout  # dvc still reads its config


def test_a_refused_remote_leaves_both_config_files_as_they_were(repo):
    # a config.local DVC refuses beside any change: S3 keys on a remote that is a folder
    with open(repo / ".dvc" / "config", "a") as f:
        f.write("['remote \"store\"']\n    url = /tmp/store\n")
    (repo / ".dvc" / "config.local").write_text("['remote \"store\"']\n    access_key_id = AKIAOLDKEY\n")
    before = [(repo / ".dvc" / name).read_bytes() for name in ("config", "config.local")]
    with pytest.raises(SystemExit) as exc:
        main(["remote", "s3", "--url", "s3://bucket-a"])
    assert "dvc refused the remote" in str(exc.value.code)
    assert [(repo / ".dvc" / name).read_bytes() for name in ("config", "config.local")] == before


def test_secrets_are_looked_for_in_the_whole_git_repository(tmp_path):
    """A DVC root in a subfolder of the git repository (`dvc init --subdir`): a secret committed
    above it and a credential in its staged .dvc/config are found all the same."""
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    git(top, "init", "-q")
    dvc(top / "sub", "init", "-q", "--subdir")
    (top / "notes.md").write_text(f"token {SECRET}\n")
    with open(top / "sub" / ".dvc" / "config", "a") as f:
        f.write("['remote \"leak\"']\n    url = s3://leak\n    secret_access_key = hunter22\n")
    git(top, "add", "-A")
    findings = check_no_secrets(top / "sub", [SECRET])
    assert any(f.startswith("notes.md: contains the secret") for f in findings), findings
    assert any(".dvc/config (staged): has a secret_access_key entry" in f for f in findings), findings


def test_show_token_without_a_token_leaves_the_placeholder_to_the_shell(repo, capsys):
    main(["remote", "dagshub", "--owner", "alice", "--repo", "fer3d", "--show-token"])
    out = capsys.readouterr().out
    assert "no DagsHub token" in out
    assert "export MLFLOW_TRACKING_PASSWORD=$DAGSHUB_USER_TOKEN\n" in out  # unquoted: the shell expands it


# -- dvc push / pull through a local S3 --------------------------------------------------------------
def s3_client(endpoint):
    boto3 = pytest.importorskip("boto3")
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def cache_files(repo: Path) -> list[Path]:
    return [p for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()]


@pytest.mark.slow
def test_dvc_push_pull_round_trip_and_damaged_remote_object(moto_server, repo, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = s3_client(moto_server)
    s3.create_bucket(Bucket="fer3d-test")
    assert main(["remote", "s3", "--url", "s3://fer3d-test/dvc", "--endpoint", moto_server, "--default"]) == 0

    content = b"label,pixels\n3,0 1 2 3\n"
    (repo / "data").mkdir()
    (repo / "data" / "small.csv").write_bytes(content)
    dvc(repo, "add", "-q", "data/small.csv")
    dvc(repo, "push", "-q")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fer3d-test", Prefix="dvc/")["Contents"]]
    md5 = hashlib.md5(content).hexdigest()
    assert keys == [f"dvc/files/md5/{md5[:2]}/{md5[2:]}"]

    # a fresh clone's view: no cache, no workspace copy
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "data" / "small.csv").unlink()
    dvc(repo, "pull", "-q")
    assert (repo / "data" / "small.csv").read_bytes() == content

    # the object on the remote is damaged (same key, other bytes)
    s3.put_object(Bucket="fer3d-test", Key=keys[0], Body=b"label,pixels\n6,9 9 9 9\n")
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "data" / "small.csv").unlink()
    pulled = dvc(repo, "pull", check=False)
    # with verify = true (what fer3d remote sets) DVC re-hashes the download, drops it from the
    # cache and fails the checkout: exit code 1, the file is absent, nothing bad stays cached
    assert pulled.returncode != 0, pulled.stdout + pulled.stderr
    assert "Checkout failed" in pulled.stderr and "data/small.csv" in pulled.stderr
    assert not (repo / "data" / "small.csv").exists()
    assert all(hashlib.md5(p.read_bytes()).hexdigest() == p.parent.name + p.name for p in cache_files(repo))
    assert dvc(repo, "status", "-c", check=False).returncode == 0  # the remote still "has" it: DVC checks names only

    # DVC's own default (verify = false) checks the damaged bytes out as if valid: why we set verify
    dvc(repo, "remote", "modify", "origin", "verify", "false")
    pulled = dvc(repo, "pull", check=False)
    assert pulled.returncode == 0 and (repo / "data" / "small.csv").read_bytes() != content, (
        "DVC now detects damaged remote objects even with verify = false; update fer3d.app.remote's docstring"
    )
