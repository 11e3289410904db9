"""Labelled face folders built from real FER2013 rows: both layouts, class-name synonyms, other sizes,
colours and formats, groups, and a clear error naming the path for every kind of bad folder."""

from pathlib import Path

import numpy as np
import pytest

from fer3d.config import EMOTIONS
from fer3d.data.folders import FolderError, canonical_class, folder_faces, scan
from tests.conftest import requires_data

pytestmark = requires_data
# FER+/RAF-DB/CK+ style names for FER2013's classes
FOLDER_NAMES = {"angry": "Anger", "disgust": "DI", "fear": "fearful", "happy": "3_happiness", "sad": "SA"}


def write_images(
    folder: Path, images: np.ndarray, labels: np.ndarray, sizes=(48, 96, 160), subjects: int = 3
) -> list[Path]:
    """Each image into <folder>/<class name>/subject<k>/, cycling sizes, gray/colour and formats."""
    import cv2

    written = []
    formats = (".png", ".jpg", ".tiff")
    for i, (img, lab) in enumerate(zip(images, labels)):
        name = FOLDER_NAMES.get(EMOTIONS[lab], EMOTIONS[lab])
        d = folder / name / f"subject{i % subjects}"
        d.mkdir(parents=True, exist_ok=True)
        side = sizes[i % len(sizes)]
        out = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        if i % 2:
            out = cv2.applyColorMap(out, cv2.COLORMAP_BONE)  # colour, still face-like
        path = d / f"img{i:03d}{formats[i % 3]}"
        cv2.imwrite(str(path), out)
        written.append(path)
    return written


def test_class_layout_with_synonyms_sizes_and_formats(fer_small, tmp_path):
    files = write_images(tmp_path, fer_small.images[:42], fer_small.label[:42])
    folder = scan(tmp_path)
    assert folder.splits is None and sorted(folder.files) == sorted(files)
    by_file = dict(zip(folder.files, folder.labels))
    for f, lab in zip(files, fer_small.label[:42]):
        assert by_file[f] == EMOTIONS[lab]
    assert folder.classes == [c for c in EMOTIONS if c in set(folder.labels)]  # canonical order
    assert sum(folder.counts().values()) == 42


def test_split_layout(fer_small, tmp_path):
    write_images(tmp_path / "train", fer_small.images[:30], fer_small.label[:30])
    write_images(tmp_path / "Validation", fer_small.images[30:50], fer_small.label[30:50])
    write_images(tmp_path / "test", fer_small.images[50:70], fer_small.label[50:70])
    folder = scan(tmp_path)
    assert sorted(set(folder.splits)) == ["test", "train", "val"]
    assert folder.only_split("val").files == [f for f, s in zip(folder.files, folder.splits) if s == "val"]
    assert len(folder.only_split("test").files) == 20
    with pytest.raises(FolderError, match="has no 'val' split"):
        scan(tmp_path).subset(np.array([s != "val" for s in folder.splits])).only_split("val")


def test_synonyms():
    where = Path("x")
    assert [canonical_class(n, where) for n in ("HA", "happiness", "03-Happy", "surprised", "NE", "contempt")] == [
        "happy",
        "happy",
        "happy",
        "surprise",
        "neutral",
        "contempt",
    ]
    with pytest.raises(FolderError, match=r"x: unknown class folder name 'joyful'; known names: angry \(anger"):
        canonical_class("joyful", where)


def test_groups_from_a_pattern(fer_small, tmp_path):
    write_images(tmp_path, fer_small.images[:30], fer_small.label[:30])
    folder = scan(tmp_path)
    groups = folder.groups(r"subject(\d)")
    names = [f.parent.name for f in folder.files]
    assert len(set(groups.tolist())) == 3
    assert all((groups[i] == groups[j]) == (names[i] == names[j]) for i in range(30) for j in range(30))
    assert (folder.groups(None) == np.arange(30)).all()
    with pytest.raises(FolderError, match=r"pattern 'person\\d\+' does not match 30 of the 30 file paths .*, e.g."):
        folder.groups(r"person\d+")
    with pytest.raises(FolderError, match=r"does not match 10 of the 30 file paths .*subject2"):
        folder.groups(r"subject([01])")  # two subjects of three: the message counts the rest
    with pytest.raises(FolderError, match="not a regular expression"):
        folder.groups("subject(")


def test_bad_folders_name_the_path(fer_small, tmp_path):
    import cv2

    with pytest.raises(FolderError, match=f"{tmp_path / 'missing'}: not a folder"):
        scan(tmp_path / "missing")
    empty = tmp_path / "empty"
    (empty / "happy").mkdir(parents=True)
    (empty / "happy" / "notes.txt").write_text("no images here")
    with pytest.raises(FolderError, match=f"{empty}: no images in <class>/ folders"):
        scan(empty)
    loose = tmp_path / "loose"
    loose.mkdir()
    cv2.imwrite(str(loose / "a.png"), fer_small.images[0])
    with pytest.raises(FolderError, match=r"1 image\(s\) lie outside class folders"):
        scan(loose)
    unknown = tmp_path / "unknown"
    write_images(unknown, fer_small.images[:4], fer_small.label[:4])
    (unknown / "smirk").mkdir()
    with pytest.raises(FolderError, match=f"{unknown / 'smirk'}: unknown class folder name 'smirk'"):
        scan(unknown)
    one = tmp_path / "one"
    write_images(one, fer_small.images[:3], np.full(3, 3))
    with pytest.raises(FolderError, match=f"{one}: only one class \\(happy\\)"):
        scan(one)
    split = tmp_path / "split"
    write_images(split / "train", fer_small.images[:10], fer_small.label[:10])
    (split / "test" / "happy").mkdir(parents=True)
    with pytest.raises(FolderError, match=f"{split / 'test'}: split 'test' has no images"):
        scan(split)
    mixed = tmp_path / "mixed"
    write_images(mixed / "train", fer_small.images[:10], fer_small.label[:10])
    write_images(mixed, fer_small.images[10:14], fer_small.label[10:14])
    with pytest.raises(FolderError, match=f"{mixed}: mixes split folders"):
        scan(mixed)


def test_an_unreadable_file_stops_the_run_naming_it(fer_small, tmp_path):
    write_images(tmp_path, fer_small.images[:6], fer_small.label[:6], sizes=(48,))
    broken = tmp_path / "Anger" / "broken.png"
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes(b"not a png at all")
    with pytest.raises(FolderError, match=f"1 unreadable file\\(s\\) in {tmp_path}: {broken}: not a readable image"):
        folder_faces(scan(tmp_path), finder=None, crops=True)
    broken.unlink()
    faces = folder_faces(scan(tmp_path), finder=None, crops=True)
    assert faces.crops.shape == (6, 48, 48) and faces.kept.all()


def test_seeded_split_is_stratified_group_aware_and_reproducible(fer_full, tmp_path):
    from fer3d.config import SPLITS, TEST, TRAIN, VAL
    from fer3d.data.folders import assign_splits

    picks = np.concatenate([np.flatnonzero(fer_full.label == c)[:40] for c in range(7)])
    write_images(tmp_path, fer_full.images[picks], fer_full.label[picks], sizes=(48,), subjects=30)
    folder = scan(tmp_path)
    groups = folder.groups(r"subject(\d+)")
    split = assign_splits(folder, groups, seed=0)
    assert (split == assign_splits(folder, groups, seed=0)).all()
    assert not (split == assign_splits(folder, groups, seed=1)).all()
    for s in (TRAIN, VAL, TEST):
        assert len(set(np.array(folder.labels)[split == s])) >= 5, SPLITS[s]  # classes on every side
    for g in np.unique(groups):
        assert len(set(split[groups == g].tolist())) == 1, "a group spans two splits"
    by_image = assign_splits(folder, folder.groups(None), seed=0)
    assert 0.05 < (by_image == TEST).mean() < 0.15 and 0.05 < (by_image == VAL).mean() < 0.15


def test_split_layout_keeps_its_splits_and_carves_validation_from_train(fer_full, tmp_path):
    from fer3d.config import TEST, TRAIN, VAL
    from fer3d.data.folders import assign_splits

    picks = np.concatenate([np.flatnonzero(fer_full.label == c)[:30] for c in range(7)])
    write_images(tmp_path / "train", fer_full.images[picks[::2]], fer_full.label[picks[::2]], sizes=(48,))
    write_images(tmp_path / "test", fer_full.images[picks[1::2]], fer_full.label[picks[1::2]], sizes=(48,))
    folder = scan(tmp_path)
    split = assign_splits(folder, folder.groups(None), seed=0)
    given = np.array(folder.splits)
    assert (split[given == "test"] == TEST).all()
    assert set(split[given == "train"].tolist()) == {TRAIN, VAL}
    assert 0.05 < (split[given == "train"] == VAL).mean() < 0.2
    (tmp_path / "test").rename(tmp_path / "val")
    with pytest.raises(FolderError, match="has split folders but no 'test' one"):
        assign_splits(scan(tmp_path), np.arange(len(folder.files)), seed=0)


def test_a_class_too_small_to_split_is_named(fer_small, tmp_path):
    from fer3d.data.folders import assign_splits

    write_images(tmp_path, fer_small.images[:20], fer_small.label[:20], sizes=(48,))
    folder = scan(tmp_path)
    with pytest.raises(FolderError, match=r"fewer than 10 images to split a val split from in \{'angry': "):
        assign_splits(folder, folder.groups(None), seed=0)
    with pytest.raises(FolderError, match=r"3 group\(s\) cannot be split 10 ways"):
        assign_splits(folder, folder.groups(r"subject(\d)"), seed=0)


def test_split_folders_name_the_train_class_that_is_missing_or_short(fer_small, tmp_path):
    from fer3d.data.folders import assign_splits

    happy, sad, angry = (np.flatnonzero(fer_small.label == EMOTIONS.index(c)) for c in ("happy", "sad", "angry"))
    write_images(tmp_path / "train", fer_small.images[happy[:5]], fer_small.label[happy[:5]], sizes=(48,))
    write_images(tmp_path / "train", fer_small.images[sad[:5]], fer_small.label[sad[:5]], sizes=(48,))
    test_rows = np.r_[happy[5:7], sad[5:7]]
    write_images(tmp_path / "test", fer_small.images[test_rows], fer_small.label[test_rows], sizes=(48,))
    folder = scan(tmp_path)
    # 5 happy and 5 sad training faces: a val split needs 9 of each, and the message names them
    with pytest.raises(FolderError, match=r"fewer than 9 train/ images .* in \{'happy': 5, 'sad': 5\}.*add a val/"):
        assign_splits(folder, folder.groups(None), seed=0)
    write_images(tmp_path / "test", fer_small.images[angry[:2]], fer_small.label[angry[:2]], sizes=(48,))
    folder = scan(tmp_path)
    with pytest.raises(FolderError, match=r"no train/ images of \['angry'\], which the other splits hold"):
        assign_splits(folder, folder.groups(None), seed=0)


def test_a_subject_in_two_split_folders_is_refused(fer_small, tmp_path):
    from fer3d.data.folders import assign_splits

    for split, rows in (("train", slice(0, 40)), ("val", slice(40, 50)), ("test", slice(50, 60))):
        write_images(tmp_path / split, fer_small.images[rows], fer_small.label[rows], sizes=(48,))
    folder = scan(tmp_path)
    assert len(assign_splits(folder, folder.groups(None), seed=0)) == 60  # each face its own group: fine
    # subject0 has faces under train/, val/ and test/: the test faces' people were trained on
    with pytest.raises(
        FolderError, match=r"the group of (train|val|test)/.*/subject0/.* has images in \['train', 'val', 'test'\]"
    ):
        assign_splits(folder, folder.groups(r"subject(\d)"), seed=0)


def test_hidden_files_are_not_faces_and_a_group_must_capture(fer_small, tmp_path):
    written = write_images(tmp_path, fer_small.images[:12], fer_small.label[:12], sizes=(48,))
    (written[0].parent / "._img000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "x.png").write_bytes(b"junk")
    folder = scan(tmp_path)
    assert len(folder.files) == 12
    with pytest.raises(FolderError, match=r"does not match 12 of the 12 file paths"):
        folder.groups(r"person(\d)|img")  # matches every file, but never with its group
