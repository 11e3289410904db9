"""dvc.yaml tells the truth: every stage lists, as deps, every project module its script imports
(transitively, lazy imports inside functions included), and the paths it names are the ones
fer3d.config.Paths defines. Adding an import without updating dvc.yaml fails here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fer3d", "stages")


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), None if not ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module `path` imports (absolute and relative, at any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from pkg import module` imports pkg.module when that is a module
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def project_closure(script: Path) -> set[Path]:
    """The script and every project file it reaches through imports, with the packages' __init__s
    (Python runs those on the way to a submodule)."""
    seen: set[Path] = set()
    # `python -m stages.x` runs the package's __init__ first
    todo = [script] + [f for f in [module_file(module_name(script).rpartition(".")[0])] if f is not None]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return seen


def resolved_stages(root: Path = ROOT) -> dict[str, dict]:
    """name -> {cmd, deps, params, outs} as DVC itself resolves dvc.yaml (matrix/foreach included)."""
    from dvc.repo import Repo

    stages = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            deps = [d for d in stage.deps if not hasattr(d, "params")]
            params = [k for d in stage.deps if hasattr(d, "params") for k in (d.params or [])]
            stages[stage.name] = {
                "cmd": stage.cmd,
                "deps": {d.def_path for d in deps},
                "params": params,
                "outs": {o.def_path for o in stage.outs},
            }
    return stages


def script_of(cmd: str) -> Path:
    words = cmd.split()
    assert words[:2] == ["python", "-m"], f"stage command {cmd!r} is not `python -m stages.<name> ...`"
    path = module_file(words[2])
    assert path is not None, f"{words[2]} is not a module of this project"
    return path


EXTRA_SET = "/data/other_faces"  # an evaluate.extra_sets folder: a dependency outside the project


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """The project's stages, plus those that only exist once params name them (evaluate_extra@<set>),
    resolved in a scratch copy of dvc.yaml whose params.yaml names an extra set."""
    import yaml
    from dvc.repo import Repo

    scratch = tmp_path_factory.mktemp("dvc_yaml")
    Repo.init(str(scratch), no_scm=True).close()
    (scratch / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["extra_sets"] = {"example": EXTRA_SET}
    (scratch / "params.yaml").write_text(yaml.safe_dump(params))
    extra = {k: v for k, v in resolved_stages(scratch).items() if k.startswith("evaluate_extra@")}
    assert extra, "dvc.yaml has no evaluate_extra stage for evaluate.extra_sets"
    return {**resolved_stages(), **extra}


def test_every_stage_lists_the_modules_it_imports(stages):
    problems = []
    for name, stage in stages.items():
        needed = {str(p.relative_to(ROOT)) for p in project_closure(script_of(stage["cmd"]))}
        declared = {d for d in stage["deps"] if d.endswith(".py")}
        if needed - declared:
            problems.append(f"{name}: dvc.yaml misses {sorted(needed - declared)}")
        if declared - needed:
            problems.append(f"{name}: dvc.yaml lists {sorted(declared - needed)}, which it never imports")
    assert not problems, "\n".join(problems)


def test_stage_data_paths_are_the_configured_ones(stages):
    from fer3d.config import Paths

    known = {str(Path(v).relative_to(ROOT)) for v in vars(Paths(ROOT)).values() if isinstance(v, Path) and v != ROOT}
    for name, stage in stages.items():
        for path in (stage["deps"] | stage["outs"]) - {d for d in stage["deps"] if d.endswith(".py")} - {EXTRA_SET}:
            assert any(path == k or path.startswith(k + "/") for k in known), (
                f"{name}: {path} is not under a path fer3d.config.Paths defines"
            )


if __name__ == "__main__":  # print each stage's module deps, to paste into dvc.yaml
    sys.path.insert(0, str(ROOT))
    for arg in sys.argv[1:]:
        print(f"# {arg}")
        for p in sorted(project_closure(script_of(f"python -m {arg}"))):
            print(f"      - {p.relative_to(ROOT)}")
