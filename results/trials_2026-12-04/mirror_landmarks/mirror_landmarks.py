"""Trial: FaceMesh on the mirrored crops too, mirrored back and averaged with the plain landmarks."""
import sys, time
import numpy as np
from fer3d import params
from fer3d.face3d import landmarks
from fer3d.io import load_npz, save_npz



def main():
    p = params.load()
    attempts = landmarks.Attempt.list_from_param(params.get(p, "landmarks.attempts", list))
    fer = load_npz("/work/main/data/fer2013.npz")
    plain = load_npz("/work/main/data/landmarks.npz")
    perm = load_npz("/work/main/data/mesh_topology.npz")["mirror_perm"]
    t = time.perf_counter()
    pts_m, used_m = landmarks.extract(np.ascontiguousarray(fer["images"][:, :, ::-1]), attempts, workers=2,
                                      min_detection_confidence=0.3, progress=False)
    print(f"mirrored pass {time.perf_counter() - t:.1f} s")
    found_m = used_m >= 0
    back = pts_m[:, perm].copy()
    back[..., 0] = 48.0 - back[..., 0]
    a, fa = plain["landmarks"].astype(np.float32), plain["found"]
    both = fa & found_m
    avg = np.where(both[:, None, None], 0.5 * (a + back), np.where(fa[:, None, None], a, back))
    found = fa | found_m
    d = np.linalg.norm(a[both] - back[both], axis=-1)
    print(f"found plain {fa.mean():.4%}, mirrored {found_m.mean():.4%}, union {found.mean():.4%}; "
          f"plain vs mirrored-back: mean {d.mean():.3f} px, median {np.median(d):.3f}, p90 {np.quantile(d, .9):.3f}")
    save_npz("data/landmarks.npz", landmarks=avg.astype(np.float16), found=found,
             attempt=np.where(fa, plain["attempt"], np.where(found_m, used_m, -1)).astype(np.int8))
    np.savez_compressed("mirrored_raw.npz", landmarks=pts_m.astype(np.float16), found=found_m)


if __name__ == '__main__':
    main()
