"""check_params: the whole of params.yaml, checked whatever changed in it.

Each other stage lists only the keys it reads, so a misspelt or made-up key no stage lists
(`dvc exp run -S ++epoch=1`, `++data.limt=100`) would re-run nothing and pass as an experiment;
this stage tracks every key, so any change runs it: unknown keys are refused (params.load), every
model's merged training settings checked, and evaluate.extra_groups may only name extra_sets."""

import sys

from fer3d import params
from fer3d.evaluation import shifts


def main() -> None:
    p = params.load()
    for name in params.get(p, "models", dict):
        params.model_config(p, name)
    params.extra_sets(p)
    shifts.parse_suite(params.get(p, "shifts.suite", list), "params.yaml: shifts.suite")
    shifts.parse_splits(params.get(p, "shifts.splits", list), "params.yaml: shifts.splits")
    print(f"check_params: params.yaml: {len(p['models'])} models and every section checked")


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError) as e:
        sys.exit(f"check_params: {e}")
