"""Trial (issue 13, 2026-12-03 session 17), step 1: a teacher for the 3D landmark_mlp. The fusion of the
committed run's seven other models (2D and 3D), weights fitted on PublicTest, scored on every FER2013 row,
tempered with T = 2 and mixed 0.5 / 0.5 with the one-hot label on training rows (one-hot elsewhere) ->
the .npz named on the command line. Cross-modal distillation: the student still sees landmarks only.

    python results/trials_2026-12-03/distill_landmark_mlp/teacher.py /tmp/teacher_mlp.npz   # repo root

Step 2: FER3D_TEACHER=/tmp/teacher_mlp.npz FER3D_ROOT=<copy> python
results/trials_2026-12-03/distill_resnet/student.py landmark_mlp, in a copy with params.diff's params.
In a pipeline this teacher needs no extra training: landmark_mlp would wait for the others (~3 min of
scoring), where resnet as a student needs a second resnet-sized training."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "distill_without_resnet"))
import teacher as without_resnet

if __name__ == "__main__":
    all_but_landmark_mlp = ["cnn", "resnet", *(m for m in without_resnet.MEMBERS[1:] if m != "landmark_mlp")]
    without_resnet.main(sys.argv[1], all_but_landmark_mlp)
