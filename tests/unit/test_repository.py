"""The repository itself: no FER2013 data or anything made from it in git, no secrets in the
committed DVC config, every stage script listed as a dependency of its stage, and every link between
README.md and docs/ landing on a file and heading that exist, and every project path they name in
inline code (`python bench/x.py`, `results/...`) present."""

import re
import subprocess

import yaml

from tests.conftest import ROOT

DATA_SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".ckpt", ".csv.gz", ".zip", ".jpg", ".jpeg", ".png")


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_git_tracks_no_data_models_or_renders():
    offending = [
        f
        for f in tracked_files()
        if f.lower().endswith(DATA_SUFFIXES)
        or (f.startswith(("data/", "models/", "reports/")) and not f.endswith(".gitignore"))
    ]
    assert offending == []


def test_committed_dvc_config_holds_no_credentials():
    config = (ROOT / ".dvc" / "config").read_text()
    for key in ("access_key_id", "secret_access_key", "password", "token"):
        assert key not in config


def test_every_stage_depends_on_its_script():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = body["cmd"].split()[2].replace(".", "/") + ".py"  # python -m stages.x ...
        assert script in body["deps"], f"{name}: {script} missing from deps"


def _outside_code_blocks(text: str):
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            yield number, line


def _heading_anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    anchors, seen = set(), {}
    for _, line in _outside_code_blocks(text):
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_links_between_readme_and_docs_resolve():
    # README's results point into docs/experiments.md and back; a renamed heading must not strand them
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = {page.resolve(): page.read_text() for page in pages}
    anchors = {}  # per linked .md, made when first linked (a page outside README and docs/ included)
    broken, checked = [], 0
    for page in pages:
        for number, line in _outside_code_blocks(texts[page.resolve()]):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if target.startswith(("http://", "https://", "mailto:")):
                    continue
                path, _, anchor = target.partition("#")
                linked = (page.parent / path).resolve() if path else page.resolve()
                checked += 1
                if not linked.exists():
                    broken.append(f"{page.name}:{number}: no file {path}")
                elif (
                    anchor
                    and linked.suffix == ".md"
                    and anchor
                    not in anchors.setdefault(linked, _heading_anchors(texts.get(linked) or linked.read_text()))
                ):
                    broken.append(f"{page.name}:{number}: no heading #{anchor} in {linked.name}")
    assert checked > 20  # README and the experiment log link to each other throughout
    assert broken == []


PROJECT_PATH = re.compile(r"^(?:bench|tests|fer3d|stages|results|docs|\.ci)/[\w./-]*$")


def test_paths_named_in_inline_code_exist():
    # commands and folders quoted in the text (`python bench/x.py --flag`, `results/<run>/`): a moved
    # script or a renamed results folder must not leave the README pointing at nothing
    missing, checked = [], 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in _outside_code_blocks(page.read_text()):
            for span in re.findall(r"`([^`]+)`", line):
                for word in span.split():
                    path = re.sub(r":\d+$", "", word.rstrip(",;:)").split("::")[0])  # file:line, test::name
                    if PROJECT_PATH.match(path):
                        checked += 1
                        if not (ROOT / path).exists():
                            missing.append(f"{page.name}:{number}: {path}")
    assert checked > 50
    assert missing == []


def exp_run_overrides(text: str) -> list[list[str]]:
    """The -S values of each `dvc exp run` command in the text's bash blocks (continued lines joined)."""
    import shlex

    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("dvc exp run"):
                words = shlex.split(line)
                commands.append([words[i + 1] for i, w in enumerate(words) if w in ("-S", "--set-param")])
    return commands


def makefile_short_schedules() -> list[str]:
    """The -S values `make repro-short` passes to `dvc exp run` (the Makefile's SHORT_SCHEDULES)."""
    import shlex

    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("SHORT_SCHEDULES :=")]
    words = shlex.split(line.split(":=", 1)[1])
    assert words[::2] == ["-S"] * (len(words) // 2)
    return words[1::2]


def test_make_repro_short_is_the_readmes_measured_command():
    """The README's numbers for the short schedules are those of its `dvc exp run -n short-schedules`
    command; `make repro-short` must run exactly those settings: every model's schedule and resnet's views."""
    from fer3d import params

    every_schedule = [f"models.{name}.epochs" for name in params.load(ROOT / "params.yaml")["models"]]
    short = [
        c
        for c in exp_run_overrides((ROOT / "README.md").read_text())
        if "models.resnet.tta_shift=0" in c and all(any(o.startswith(f"{k}=") for o in c) for k in every_schedule)
    ]
    assert len(short) == 1
    assert sorted(short[0]) == sorted(makefile_short_schedules())


def test_every_dvc_exp_run_in_readme_applies_and_passes_the_params_checks(tmp_path):
    """DVC applies -S through Hydra and refuses a plain -S on a key params.yaml lacks (`++` adds it):
    each README command and `make repro-short` is applied as DVC does, to a copy of params.yaml, and
    the result loaded and checked for every model."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    from fer3d import params

    commands = exp_run_overrides((ROOT / "README.md").read_text())
    assert len(commands) >= 5 and any(len(c) > 5 for c in commands)  # the GPU recipe among them
    commands.append(makefile_short_schedules())
    for i, overrides in enumerate(commands):
        copy = tmp_path / f"params{i}.yaml"
        shutil.copy(ROOT / "params.yaml", copy)
        apply_overrides(str(copy), overrides)  # raises as `dvc exp run` does
        p = params.load(copy)
        for name in p["models"]:
            params.model_config(p, name)


def test_every_model_key_takes_a_dvc_override(tmp_path):
    """`dvc exp run -S` leaves a YAML-aliased value as it was, silently (the 3D models once shared
    their augment block through an anchor): every model's every setting, nested ones included, is
    applied as DVC does and read back changed, and no other model moves."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    from fer3d import params

    original = params.load(ROOT / "params.yaml")
    assert "&" not in re.sub(r"#.*", "", (ROOT / "params.yaml").read_text())  # no anchors

    def leaves(tree: dict, prefix: str):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                yield f"{prefix}{key}", value

    for name, section in original["models"].items():
        for dotted, value in leaves(section, f"models.{name}."):
            copy = tmp_path / "params.yaml"
            shutil.copy(ROOT / "params.yaml", copy)
            apply_overrides(str(copy), [f"{dotted}={value * 2 + 1}"])
            changed = params.load(copy)
            got = changed
            for key in dotted.split("."):
                got = got[key]
            assert got == value * 2 + 1, dotted
            others = {n: s for n, s in changed["models"].items() if n != name}
            assert others == {n: s for n, s in original["models"].items() if n != name}, dotted
