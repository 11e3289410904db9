"""MLflow tracking that can never cost a training result.

DVC outputs (models/*.pt, metrics/*.json) are the record of a run; MLflow is a convenient mirror of
them. So every MLflow call goes through one guard: the first exception (server down, timeout, auth,
an old server without an endpoint) prints one warning, switches the tracker to "failed" and turns
all later calls into no-ops. Training never waits long on a dead server: unless the user set them,
MLflow's HTTP retries and timeout are lowered (see HTTP_DEFAULTS).

Where runs go:
  FER3D_TRACKING=off           nowhere; mlflow is not even imported
  MLFLOW_TRACKING_URI          that server/store (MLFLOW_TRACKING_USERNAME/PASSWORD from env)
  DAGSHUB_REPO=owner/repo      https://dagshub.com/owner/repo.mlflow; with DAGSHUB_USER_TOKEN set the
                               token becomes MLFLOW_TRACKING_PASSWORD (username: DAGSHUB_USERNAME or owner)
  otherwise                    sqlite:///<root>/mlflow.db, artifacts in <root>/mlartifacts
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import DAGSHUB_HOST, workspace_root

# MLflow's own defaults (7 retries with exponential backoff, 120 s timeout) stall a training run for
# minutes per call when the server is gone. These apply unless the variable is already set.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_OFF, _ON = ("off", "0", "false", "no"), ("on", "1", "true", "yes", "")
METRICS_PER_CALL = 1000  # MLflow's limit for one log_batch
MAX_PARAM_CHARS = 500  # the limit of MLflow 2.x servers (DagsHub runs one); newer ones allow more


# on a training run: the md5 of the model file it wrote (DVC's md5 of models/<m>.pt), by which the
# evaluate stage finds the run to add the model's test scores to
MODEL_MD5_TAG = "fer3d.model_md5"
# on a run whose tracking failed midway: why (the tracker ended it FAILED or KILLED)
ERROR_TAG = "fer3d.tracking_error"


class StoppedByUser(Exception):
    """A Ctrl-C turned into another exception (the training loop's TrainingInterrupted): a run it ends
    is KILLED, as after a plain KeyboardInterrupt, not FAILED."""


class TrackingConfigError(ValueError):
    """A tracking environment variable has a value we cannot use."""


def tracking_enabled() -> bool:
    value = os.environ.get("FER3D_TRACKING", "on").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    raise TrackingConfigError(f"FER3D_TRACKING must be 'on' or 'off', found {value!r}")


def dagshub_tracking_uri(owner_repo: str) -> str:
    owner, _, repo = owner_repo.partition("/")
    if not (_NAME.match(owner) and _NAME.match(repo)):
        raise TrackingConfigError(f"DAGSHUB_REPO must be 'owner/repo' (letters, digits, _ . -), found {owner_repo!r}")
    return f"{DAGSHUB_HOST}/{owner}/{repo}.mlflow"


def resolve_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the DagsHub URI from DAGSHUB_REPO, else the project's sqlite store.
    For DagsHub, exports MLFLOW_TRACKING_USERNAME/PASSWORD when DAGSHUB_USER_TOKEN is available."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("DAGSHUB_REPO"):
        uri = dagshub_tracking_uri(os.environ["DAGSHUB_REPO"].strip())
        token = os.environ.get("DAGSHUB_USER_TOKEN")
        if token:
            owner = os.environ["DAGSHUB_REPO"].strip().split("/")[0]
            os.environ.setdefault("MLFLOW_TRACKING_USERNAME", os.environ.get("DAGSHUB_USERNAME") or owner)
            os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", token)
        return uri
    return local_tracking_uri()


def dvc_experiment_tags() -> dict[str, str]:
    """The DVC experiment a run belongs to (`dvc exp run` sets these for its stages), so that MLflow's
    runs can be matched with `dvc exp show`'s rows."""
    names = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.baseline_rev"}
    return {tag: os.environ[var] for var, tag in names.items() if os.environ.get(var)}


def experiment_run_name(base: str) -> str:
    """`base` (a model, a stage), with its DVC experiment when `dvc exp run` runs it (resnet@lr-a): in
    MLflow's run list a queue of experiments is not a column of identical names."""
    experiment = os.environ.get("DVC_EXP_NAME")
    return f"{base}@{experiment}" if experiment else base


def file_md5(path: str | os.PathLike) -> str:
    """What DVC records for a file output (dvc.lock's md5)."""
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_tracking_uri(root: str | Path | None = None) -> str:
    """The workspace's own store, also for a queued experiment running in DVC's temporary copy."""
    return f"sqlite:///{workspace_root(root) / 'mlflow.db'}"


SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "DAGSHUB_USER_TOKEN", "AWS_SECRET_ACCESS_KEY")


def redact(text: str) -> str:
    """`text` (a URI, an error message) without any user:password@ part or known secret value."""
    text = re.sub(r"(?<=//)[^/\s]*@", "***@", str(text))  # up to the last @ of the authority: p@ss too
    for name in SECRET_ENV:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _key(name: Any) -> str:
    """MLflow keys allow letters, digits, _ - . space : /; anything else becomes _."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", str(name))[:250]


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The error on one line, its root cause first (MLflow buries it at the end of a long message)."""
    text = redact(" ".join(str(error).split())) or type(error).__name__
    text = f"{type(error).__name__}: {text}" if type(error).__name__ not in text else text
    cause = re.search(r"\[Errno -?\d+\][^'\")(]*|Read timed out|error code \d+ != \d+", text)
    if cause:
        text = f"{cause.group(0).strip()}; {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _sqlite_store_lock(uri: str) -> Iterator[None]:
    """Serialise opening a local sqlite store across processes: two queued experiments (`dvc queue
    start -j 2`) opening a new store at once both migrate its schema, and one fails
    ("duplicate column name"), losing that stage's run."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """urllib3 logs a warning per retry; the tracker prints its own single warning instead."""
    log = logging.getLogger("urllib3.connectionpool")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _ctrl_c_after_the_call() -> Iterator[None]:
    """A Ctrl-C inside a write to a sqlite store leaves its transaction open and the store locked: the
    run can then not be ended and shows RUNNING for ever. So a first Ctrl-C during an MLflow call is
    raised when the call returns (a dead server's wait is bounded by HTTP_DEFAULTS); a second one at once."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # ignored, or someone else's
    ):
        yield
        return
    pending: list[int] = []

    def later(signum, frame):
        if pending:
            raise KeyboardInterrupt
        pending.append(signum)
        # os.write: a print here could interrupt a print of the main code ("reentrant call")
        os.write(2, b"tracking: stopping once this MLflow call returns (Ctrl-C again: at once)\n")

    signal.signal(signal.SIGINT, later)
    try:
        yield
    finally:  # also when the call failed: the user's Ctrl-C wins over the tracker's "training continues"
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if pending:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _fluent_target(uri: str, experiment_id: str) -> Iterator[None]:
    """mlflow.<flavor>.log_model reads the process-wide tracking URI and puts MLflow 3's logged model
    in the process-wide experiment (else "Default"). Set both for the call only, then restore the
    global URI and the MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_ID variables (set_tracking_uri sets one)."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    old_global = getattr(utils, "_tracking_uri", None)
    old_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_id
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_global)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Tracker:
    """One MLflow run around one training; see the module docstring. `status` is "ok", "disabled"
    or "failed: <reason>"."""

    def __init__(
        self,
        experiment: str = "fer3d",
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        uri: str | None = None,
        continues: Mapping[str, str] | None = None,
    ):
        self.experiment = experiment
        # {"uri", "run_id"} of the run an interrupted training logged its first epochs to (what
        # `reference` gave it, kept in the checkpoint): the resumed training logs on in that run
        self.continues = dict(continues) if continues else None
        self.continued = False
        self.logged_steps: set[int] = set()  # the epochs a continued run holds already
        # under `dvc exp run`, every run names and tags its DVC experiment
        self.run_name = experiment_run_name(run_name) if run_name else None
        self.tags = {str(k): str(v) for k, v in {**dvc_experiment_tags(), **(tags or {})}.items()}
        self.enabled = tracking_enabled()
        self.uri = (uri or resolve_tracking_uri()) if self.enabled else None
        self.status = "ok" if self.enabled else "disabled"
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client = None
        self._experiment_ids: list[str] | None = None  # where log_to_tagged_run looks
        self._params: dict[str, str] = {}
        self._warned_keys: set[str] = set()

    # -- the guard --------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status == "ok" and self.run_id is not None

    def _guard(self, what: str, fn, *args, **kwargs) -> Any:
        if self.status != "ok":
            return None
        try:
            with _quiet_retries(), _ctrl_c_after_the_call():
                return fn(*args, **kwargs)
        except Exception as e:
            self._fail(what, e)
            return None

    def _fail(self, what: str, error: BaseException) -> None:
        reason = f"{what}: {_one_line(error)}"
        self.status = f"failed: {reason}"
        print(
            f"tracking: MLflow at {redact(self.uri or '?')} failed ({reason}); "
            f"training continues, DVC outputs are unaffected",
            file=sys.stderr,
            flush=True,
        )

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned_keys:
            self._warned_keys.add(key)
            print(f"tracking: {redact(message)}", file=sys.stderr, flush=True)

    def _require_run(self) -> None:
        if self.status == "ok" and self.run_id is None:
            raise RuntimeError("Tracker: use it as a context manager (`with Tracker(...) as tracker:`) before logging")

    # -- run lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Tracker:
        if self.enabled:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
            try:
                self._guard("start run", self._start)
            except BaseException:  # a Ctrl-C after the run was made: __exit__ is not called for __enter__
                self.__exit__(*sys.exc_info())
                raise
        return self

    def _start(self) -> None:
        import mlflow
        from mlflow.tracking.context.registry import resolve_tags

        with _sqlite_store_lock(self.uri):  # the first use of a store creates and migrates its tables
            client = mlflow.MlflowClient(tracking_uri=self.uri)
            experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"the MLflow experiment {self.experiment!r} (id {experiment.experiment_id}) is deleted in "
                f"{redact(self.uri)}; `mlflow experiments restore --experiment-id {experiment.experiment_id}` "
                "brings it back (or delete it for good with `mlflow gc`)"
            )
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if self.uri == local_tracking_uri():
                location = (workspace_root() / "mlartifacts").as_uri()
            try:
                experiment_id = client.create_experiment(self.experiment, artifact_location=location)
            except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel stage
                experiment = client.get_experiment_by_name(self.experiment)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        self._client, self.experiment_id = client, experiment_id
        if self.continues and self._reopen(self.continues):
            return
        tags = resolve_tags(self.tags)  # user, source file, git commit, then ours
        if self.continues:  # the earlier part could not be reopened: say where it is
            tags["fer3d.continues_run"] = self.continues["run_id"]
        run = client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id

    def _reopen(self, previous: Mapping[str, str]) -> bool:
        """Continue the run of `previous` (a resumed training's first epochs) if it is in this store
        and this experiment and not deleted: one run holds the whole curve. Its params are taken
        as logged (MLflow cannot change them; a changed one warns in log_params)."""
        from mlflow.entities import RunTag
        from mlflow.exceptions import MlflowException

        where = f"{previous.get('run_id')} in {previous.get('uri')}"
        if previous.get("uri") != redact(self.uri or ""):
            print(f"tracking: the checkpoint's epochs were logged to run {where}; starting a new run here")
            return False
        try:
            run = self._client.get_run(previous["run_id"])
        except MlflowException as e:
            # only a "not found" means gone: after a server error the tracker fails and `reference`
            # keeps naming the run, so a later resume still continues it rather than splitting the curve
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":  # not a plain 404 page: a gateway's is no answer
                raise
            run = None
        if run is None or run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            print(f"tracking: run {where} of the checkpoint's epochs is gone or elsewhere; starting a new run")
            return False
        if run.info.status == "FINISHED":  # it logged its model already (a Ctrl-C after it ended): keep it whole
            print(f"tracking: run {where} of the checkpoint's epochs is finished; starting a new run")
            return False
        self._client.update_run(run.info.run_id, status="RUNNING")
        self.run_id = run.info.run_id  # from here on __exit__ ends it, whatever fails next
        self._client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in self.tags.items()])
        if ERROR_TAG in run.data.tags:  # the failure that ended its last part; this part may end well
            self._client.delete_tag(run.info.run_id, ERROR_TAG)
        self.continued, self._params = True, dict(run.data.params)
        self.logged_steps = {m.step for m in self._client.get_metric_history(self.run_id, "train_loss")}
        print(f"tracking: continuing MLflow run {self.run_id} (the checkpoint's epochs are logged there)")
        return True

    def reference(self) -> dict[str, str] | None:
        """Where the epochs so far are logged ({"uri" without credentials, "run_id"}), for a checkpoint
        to keep: this run, even after tracking failed in it (a resume reopens it and logs the epochs it
        lacks), or, where no run could be made, the run this one was to continue."""
        if not self.enabled:
            return None
        if self.run_id is not None:
            return {"uri": redact(self.uri or ""), "run_id": self.run_id}
        return dict(self.continues) if self.continues else None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.run_id is None:
            return False
        stopped = exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, StoppedByUser))
        if self.active:
            status = "FINISHED" if exc_type is None else ("KILLED" if stopped else "FAILED")
            self._guard("end run", self._client.set_terminated, self.run_id, status)
        else:
            self._end_after_failure("KILLED" if stopped else "FAILED")
        return False  # never swallow the body's exception

    def _end_after_failure(self, status: str) -> None:
        """A logging call failed mid-run (a dead server, or a local fault such as an unwritable artifact
        folder with a healthy server). Left alone the run would show RUNNING for ever: try once, without
        retries, to say why and end it FAILED (its record is incomplete), or KILLED after a Ctrl-C.
        A dead server costs one refused connection or one timeout."""
        from mlflow.entities import RunTag

        reason = self.status.removeprefix("failed: ")
        saved = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        try:
            with _quiet_retries(), _ctrl_c_after_the_call():
                self._client.log_batch(self.run_id, tags=[RunTag(ERROR_TAG, reason[:5000])])
                self._client.set_terminated(self.run_id, status)
        except Exception:
            pass  # the warning was printed when the first call failed
        finally:
            if saved is None:
                os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
            else:
                os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved

    # -- logging ----------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Nested dicts are flattened with dots. A key logged again with the same value is skipped;
        with a different value it is skipped with a warning (MLflow refuses to change params)."""
        self._require_run()
        if not self.active:
            return
        from mlflow.entities import Param

        fresh = []
        for key, value in flatten(params).items():
            key, text = _key(key), str(value)
            if len(text) > MAX_PARAM_CHARS:
                text = text[: MAX_PARAM_CHARS - 3] + "..."
            if key in self._params:
                if self._params[key] != text:
                    self._warn(
                        f"param:{key}",
                        f"param {key!r} already logged as {self._params[key]!r}; "
                        f"MLflow cannot change it to {text!r}, keeping the first value",
                    )
                continue
            self._params[key] = text
            fresh.append(Param(key, text))
        for i in range(0, len(fresh), 100):  # log_batch takes at most 100 params
            self._guard("log params", self._client.log_batch, self.run_id, params=fresh[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Numbers (python, numpy or 0-d torch tensors); anything else is skipped with a warning."""
        self.log_history([(int(step or 0), metrics)])

    def log_history(self, steps: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Metrics of many steps (a resumed training's checkpointed epochs) in as few calls as MLflow
        allows (1000 values a call), not one call a step."""
        self._require_run()
        if not self.active:
            return
        from mlflow.entities import Metric

        def send(batch: list) -> None:
            for i in range(0, len(batch), METRICS_PER_CALL):
                self._guard("log metrics", self._client.log_batch, self.run_id, metrics=batch[i : i + METRICS_PER_CALL])

        now, batch = int(time.time() * 1000), []
        for step, metrics in steps:
            entries = []
            for key, value in flatten(metrics).items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    self._warn(f"metric:{key}", f"metric {key!r} is not a number ({value!r}); not logged")
                    continue
                entries.append(Metric(_key(key), number, now, int(step)))
            # whole steps in each call: a resume takes a step whose train_loss the run holds as logged
            if batch and len(batch) + len(entries) > METRICS_PER_CALL:
                send(batch)
                batch = []
            batch += entries
        send(batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._require_run()
        if not self.active:
            return
        from mlflow.entities import RunTag

        entries = [RunTag(_key(k), str(v)) for k, v in tags.items()]
        self._guard("set tags", self._client.log_batch, self.run_id, tags=entries)

    def log_to_tagged_run(self, tag: str, value: str, metrics: Mapping[str, Any]) -> str | None:
        """Log `metrics` to the newest other run of any experiment with tag `tag` = `value` (the
        evaluate stage: a model's test scores onto the training run that wrote the model file).
        Its id, or None where no run has the tag."""
        self._require_run()
        if not self.active:
            return None
        from mlflow.entities import Metric

        if self._experiment_ids is None:  # every experiment: a model may set its own mlflow_experiment
            found = self._guard("list experiments", self._client.search_experiments)
            self._experiment_ids = [e.experiment_id for e in found or []]
        runs = self._guard(
            "find tagged run",
            self._client.search_runs,
            self._experiment_ids,
            f"tags.`{tag}` = '{value}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return None
        now, run_id = int(time.time() * 1000), runs[0].info.run_id
        entries = [Metric(_key(k), float(v), now, 0) for k, v in flatten(metrics).items() if v is not None]
        for i in range(0, len(entries), 1000):  # log_batch takes at most 1000 metrics
            self._guard(f"log metrics to run {run_id}", self._client.log_batch, run_id, metrics=entries[i : i + 1000])
        return run_id if self.status == "ok" else None

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """A file, or a directory's contents, as run artifacts. A missing path is a warning."""
        self._require_run()
        if not self.active:
            return
        path = Path(path)
        if not path.exists():
            self._warn(f"artifact:{path}", f"artifact {path} not found; not logged")
            return
        log = self._client.log_artifacts if path.is_dir() else self._client.log_artifact
        self._guard(f"log artifact {path}", log, self.run_id, str(path), artifact_path)

    def log_model(self, module, name: str = "model", **mlflow_kwargs: Any) -> None:
        """A CPU copy of a torch module via mlflow.pytorch.log_model (pickled, pinned requirements,
        no requirement inference, no input example). Servers without MLflow 3's logged-model API
        (MLflow 2.x, e.g. DagsHub's) refuse that; then the saved model folder is logged as run
        artifacts under `name`, which mlflow.pytorch.load_model("runs:/<run>/<name>") loads too."""
        self._require_run()
        if not self.active:
            return
        model = self._guard("copy model to CPU", _cpu_copy, module)
        if model is None:
            return
        kwargs = {"pip_requirements": _pip_requirements(), "serialization_format": "pickle", **mlflow_kwargs}
        try:
            import mlflow.pytorch

            with _quiet_retries(), _ctrl_c_after_the_call(), _fluent_target(self.uri, self.experiment_id):
                mlflow.pytorch.log_model(model, name=name, run_id=self.run_id, **kwargs)
            return
        except Exception as first:
            self._guard(
                f"log model ({_one_line(first, 150)}; then as artifacts)",
                self._log_model_as_artifacts,
                model,
                name,
                kwargs,
            )
            if self.status == "ok":
                self._warn(
                    "model-fallback",
                    f"mlflow.pytorch.log_model failed ({_one_line(first, 150)}); "
                    f"the model was logged as run artifacts under {name!r} instead",
                )

    def _log_model_as_artifacts(self, model, name: str, kwargs: dict) -> None:
        import mlflow.pytorch

        kwargs = {k: v for k, v in kwargs.items() if k not in ("registered_model_name", "await_registration_for")}
        with tempfile.TemporaryDirectory(prefix="fer3d-model-") as tmp:
            mlflow.pytorch.save_model(model, os.path.join(tmp, name), **kwargs)
            self._client.log_artifacts(self.run_id, os.path.join(tmp, name), name)


def _cpu_copy(module):
    module = getattr(module, "_orig_mod", module)  # torch.compile wrapper
    module = (
        getattr(module, "module", module)
        if type(module).__name__ in ("DataParallel", "DistributedDataParallel")
        else module
    )
    return copy.deepcopy(module).to("cpu").eval()


def _pip_requirements() -> list[str]:
    from importlib import metadata

    reqs = []
    for dist in ("torch", "cloudpickle", "numpy"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist).split('+')[0]}")
        except metadata.PackageNotFoundError:
            reqs.append(dist)
    return reqs


def log_scores(
    stage: str,
    experiment: str,
    scores: Mapping[str, Mapping[str, float]],
    model_files: Mapping[str, str | os.PathLike],
    params: Mapping[str, Any],
    artifacts: Sequence[str | os.PathLike] = (),
) -> Tracker:
    """A scoring stage's numbers in MLflow: a run named after the stage with every model's and fusion's
    scores (`<name>/<metric>`), the model files' md5s and `params`; and each model's scores on the newest
    training run that wrote its model file (MODEL_MD5_TAG), so that MLflow's run table (DagsHub's
    Experiments tab) compares trainings by their test scores too. DVC's metrics stay the record: a
    tracking failure warns and changes nothing else."""
    with Tracker(experiment=experiment, run_name=stage, tags={"fer3d.stage": stage}) as t:
        if not t.active:  # off, or the store cannot be reached (that warning is printed)
            return t
        md5 = {n: file_md5(path) for n, path in model_files.items()}
        t.log_params({**params, "models": {n: {"md5": m} for n, m in md5.items()}})
        t.log_metrics({f"{n}/{k}": v for n, numbers in scores.items() for k, v in numbers.items()})
        linked = [
            n
            for n in md5
            if n in scores
            # not val_acc: on a training run that is the per-epoch curve (a point at step 0 would join it)
            and t.log_to_tagged_run(MODEL_MD5_TAG, md5[n], {k: v for k, v in scores[n].items() if k != "val_acc"})
        ]
        for path in artifacts:
            t.log_artifact(path)
    if t.status == "ok":
        missing = sorted(set(md5) - set(linked))
        print(
            f"{stage}: MLflow run {t.run_id} holds every score; added to the training runs of {len(linked)} of "
            f"{len(md5)} models" + (f" (no tracked run wrote {', '.join(missing)})" if missing else "")
        )
    return t
