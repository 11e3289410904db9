"""Trial (issue 13, 2026-12-03 session 16), step 1: a teacher with a short resnet. The fusion of the
committed run's seven other models and a resnet trained 20 epochs (the train stage in a project copy
with resnet20.diff's params.yaml; its model file is the second argument), weights fitted on
PublicTest (fer3d.inference.fusion.fit_weights, as the evaluate stage fits a row), scored on every
FER2013 row, tempered with T = 2 and mixed 0.5 / 0.5 with the one-hot label on training rows
(one-hot elsewhere) -> the .npz named on the command line.

    python results/trials_2026-12-03/distill_short_teacher/teacher.py /tmp/teacher.npz <copy>/models/resnet.pt

Step 2 is ../distill_resnet/student.py with this teacher.npz beside it (40 epochs from scratch).
Run from the repo root."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "distill_without_resnet"))
import teacher as without_resnet

if __name__ == "__main__":
    with_short_resnet = ["cnn", "resnet", *without_resnet.MEMBERS[1:]]
    without_resnet.main(sys.argv[1], with_short_resnet, {"resnet": sys.argv[2]})
