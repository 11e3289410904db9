"""evaluate_extra@<name>: every model and fusion row on the labelled face folder that params
`evaluate.extra_sets.<name>` names → metrics/extra/<name>.json and reports/extra/<name>.md.

The same scoring as `fer3d evaluate-folder` (fer3d.app.evaluate_folder): accuracy, macro-F1,
per-class recall, confusion and 95% bootstrap intervals over the groups the regex in
`evaluate.extra_groups.<name>` names (each image its own group without one). A folder in the
<split>/<class>/ layout is scored on its test split."""

import sys

from fer3d import params
from fer3d.app.evaluate_folder import evaluate_folder, markdown
from fer3d.app.faces import FaceFinder
from fer3d.config import Paths, outside_path
from fer3d.data import folders
from fer3d.inference import Predictor
from fer3d.inference.threads import fix_cpu_threads
from fer3d.io import save_json, save_text


def main(name: str) -> None:
    p, paths = params.load(), Paths()
    sets, groups = params.extra_sets(p)
    if name not in sets:
        raise params.ParamError(f"params.yaml: evaluate.extra_sets has no set {name!r} (it has {sorted(sets)})")
    fix_cpu_threads(params.get(p, "train.threads", int))  # as evaluate: the same bits beside other stages
    group = groups.get(name)
    folder = folders.scan(outside_path(str(sets[name])))
    if folder.splits is not None:
        folder = folder.only_split("test")
    with Predictor.from_dir(paths.models) as predictor, FaceFinder() as finder:
        result = evaluate_folder(predictor, folder, finder, group)
    result["set"] = str(sets[name])  # as params.yaml says it: no machine-specific absolute path in git
    save_json(paths.extra_metrics / f"{name}.json", result)
    save_text(paths.extra_reports / f"{name}.md", markdown(name, result, predictor.names))
    print(f"evaluate_extra: {name}: {result['used']} image(s) scored → {paths.extra_metrics / (name + '.json')}")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"evaluate_extra: {e}")
