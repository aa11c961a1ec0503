import hashlib
import json
from collections import Counter

import pytest

from edgeclf.core.config import SplitConfig
from edgeclf.core.errors import DataError
from edgeclf.data.dataset import Dataset, discover, split_sizes
from tests.helpers import IGNORED, JUNK, class_folders

SPLIT = SplitConfig(train=0.7, val=0.15, test=0.15)


def test_messy_folder_skips_and_names_every_bad_file(messy):
    data = discover(messy, SPLIT, seed=1, duplicates="warn")
    assert data.classes == ["bag", "sneaker", "trouser"]
    assert {s.path: s.reason for s in data.skipped} == JUNK
    assert {s.path: s.reason for s in data.ignored} == IGNORED
    # 10 Fashion-MNIST images per class, plus the real photos in awkward modes
    per_class = Counter(r.label_name for r in data.records)
    assert per_class == {"bag": 12, "sneaker": 12, "trouser": 12}
    paths = {r.path for r in data.records}
    for photo in (
        "bag/photo_cmyk.jpg",
        "sneaker/photo_palette.png",
        "trouser/photo_16bit.png",
        "bag/photo_exif_rotated.jpg",
        "sneaker/photo_2400px.jpg",
        "trouser/photo_rgba.PNG",
    ):
        assert photo in paths


def test_manifest_records_sha256_label_and_split(messy, tmp_path):
    data = discover(messy, SPLIT, seed=1, duplicates="warn")
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps(data.to_json()))
    again = Dataset.load(manifest)
    assert again.records == data.records and again.skipped == data.skipped
    for record in data.records:
        assert record.sha256 == hashlib.sha256((messy / record.path).read_bytes()).hexdigest()
        assert data.classes[record.label] == record.label_name
    assert {r.split for r in data.records} == {"train", "val", "test"}


@pytest.mark.parametrize("n", [7, 10, 13, 20, 33, 100, 101, 1000])
def test_split_sizes_within_one_image(n):
    train, val, test = split_sizes(n, SPLIT)
    assert train + val + test == n
    assert min(train, val, test) >= 1
    for got, fraction in ((train, 0.7), (val, 0.15), (test, 0.15)):
        assert abs(got - n * fraction) < 1


def test_tiny_class_gets_one_image_per_split():
    assert split_sizes(3, SPLIT) == (1, 1, 1)
    assert split_sizes(4, SPLIT) == (2, 1, 1)
    assert split_sizes(5, SplitConfig(train=0.8, val=0.2, test=0.0)) == (4, 1, 0)


def test_stratified_per_class(tmp_path):
    root = class_folders(tmp_path / "d", ["bag", "sneaker", "trouser"], 40)
    data = discover(root, SPLIT, seed=3, duplicates="warn")
    for name, counts in ((c, Counter(r.split for r in data.records if r.label_name == c)) for c in data.classes):
        assert (counts["train"], counts["val"], counts["test"]) == (28, 6, 6), name


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    root = class_folders(tmp_path / "d", ["bag", "sneaker"], 20)
    a, b, c = (discover(root, SPLIT, seed=s, duplicates="warn") for s in (5, 5, 6))
    assert a.records == b.records
    assert a.records != c.records


def test_a_class_split_does_not_depend_on_other_classes(tmp_path):
    two = class_folders(tmp_path / "two", ["bag", "sneaker"], 20)
    three = class_folders(tmp_path / "three", ["bag", "sneaker", "trouser"], 20)

    def bag(data):
        return {(r.path, r.split) for r in data.records if r.label_name == "bag"}

    assert bag(discover(two, SPLIT, 1, "warn")) == bag(discover(three, SPLIT, 1, "warn"))


def test_presplit_folder_is_used_as_is(tmp_path):
    root = tmp_path / "pre"
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        class_folders(root / split, ["bag", "sneaker"], n)
    data = discover(root, SPLIT, seed=1, duplicates="warn")
    assert data.layout == "presplit"
    assert data.counts() == {
        "train": {"bag": 6, "sneaker": 6},
        "val": {"bag": 2, "sneaker": 2},
        "test": {"bag": 2, "sneaker": 2},
    }
    assert all(r.path.startswith(f"{r.split}/") for r in data.records)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "is empty"),
        (
            lambda root: class_folders(root, ["bag"], 5),
            r"found 1 class folder\(s\) with images \(bag\); need at least 2",
        ),
        (lambda root: class_folders(root, ["bag", "sneaker"], 2), "class 'bag' has 2 image\\(s\\): too few to split"),
        (lambda root: class_folders(root / "train", ["bag", "sneaker"], 5), "has train/ but no val/"),
    ],
)
def test_data_errors(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match=message) as info:
        discover(root, SPLIT, seed=1, duplicates="warn")
    assert "\n" not in str(info.value)


def test_class_with_only_junk_is_an_error(tmp_path):
    root = class_folders(tmp_path / "d", ["bag", "sneaker"], 5)
    (root / "coat").mkdir()
    (root / "coat" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="coat hold no readable images"):
        discover(root, SPLIT, seed=1, duplicates="warn")


def test_identical_files_across_classes_and_splits_are_reported_or_dropped(tmp_path, caplog):
    source = class_folders(tmp_path / "source", ["bag", "sneaker"], 6)
    root = tmp_path / "pre"
    for name in ("bag", "sneaker"):  # distinct images: 4 in train, 2 in val
        files = sorted((source / name).iterdir())
        for split, chosen in (("train", files[:4]), ("val", files[4:])):
            (root / split / name).mkdir(parents=True)
            for f in chosen:
                (root / split / name / f.name).write_bytes(f.read_bytes())
    bags = sorted((root / "train" / "bag").iterdir())
    sneakers = sorted((root / "train" / "sneaker").iterdir())
    (root / "val" / "bag" / "copy.png").write_bytes(bags[2].read_bytes())  # train -> val: leakage
    sneakers[3].write_bytes(bags[3].read_bytes())  # one picture, two labels: label noise
    with caplog.at_level("WARNING", logger="edgeclf.data.dataset"):
        warned = discover(root, SPLIT, seed=1, duplicates="warn")
    kinds = {d["kind"]: d for d in warned.duplicates}
    assert len(warned.duplicates) == 2 and len(warned.records) == 13  # warn keeps every file
    assert set(kinds["classes"]["files"]) == {f"train/bag/{bags[3].name}", f"train/sneaker/{sneakers[3].name}"}
    assert set(kinds["splits"]["files"]) == {"val/bag/copy.png", f"train/bag/{bags[2].name}"}
    assert any("label noise" in r.getMessage() and "leakage" in r.getMessage() for r in caplog.records)
    assert Dataset.from_json(json.loads(json.dumps(warned.to_json()))).duplicates == warned.duplicates
    dropped = discover(root, SPLIT, seed=1, duplicates="drop")
    gone = {s.path: s.reason for s in dropped.skipped}
    for noisy in (f"train/bag/{bags[3].name}", f"train/sneaker/{sneakers[3].name}"):
        assert "label noise" in gone[noisy]
    assert "would leak across splits" in gone["val/bag/copy.png"]
    kept = {r.path for r in dropped.records}
    assert f"train/bag/{bags[2].name}" in kept and len(kept) == 10 and not (set(gone) & kept)


def test_links_leading_outside_the_data_folder_are_not_followed(tmp_path, caplog):
    """Before: a class folder that was a link to / made train walk the whole filesystem, decode
    18,380 host images as one class and write their paths into dataset.json (exit 0)."""
    root = class_folders(tmp_path / "d", ["bag", "sneaker"], 10)
    outside = class_folders(tmp_path / "elsewhere", ["coat"], 5)
    (root / "host").symlink_to("/")
    (root / "coat").symlink_to(outside / "coat")  # a whole class from elsewhere
    (root / "bag" / "passwd.png").symlink_to("/etc/passwd")
    inside = next((root / "sneaker").glob("*.png"))
    (root / "bag" / "link_inside.png").symlink_to(inside)  # a link within the folder is a file like any other
    data = discover(root, SPLIT, seed=0, duplicates="warn")
    assert data.classes == ["bag", "sneaker"]
    assert all(not r.path.startswith(("host", "coat")) for r in data.records)
    assert any(r.path == "bag/link_inside.png" for r in data.records)
    reasons = {s.path: s.reason for s in data.ignored}
    for path in ("host", "coat", "bag/passwd.png"):
        assert reasons[path] == "a link leading outside the data folder: not followed"
    assert any(
        "3 link(s) leading outside it not followed (bag/passwd.png, coat, host)" in r.getMessage()
        for r in caplog.records
    )
    assert "/etc" not in json.dumps(data.to_json())


@pytest.mark.parametrize("name", ["bad\nname", "esc\x1b[2Jname", "osc\x1b]0;pwned\x07", "rlo\u202egnp.exe", "cr\rname"])
def test_a_class_name_with_control_characters_is_refused_naming_the_folder(tmp_path, name):
    """Before: a newline in a class folder's name gave labels.txt 4 lines for 3 classes, and ESC
    sequences in names reached the terminal raw."""
    from edgeclf.core.printable import printable

    root = class_folders(tmp_path / "d", ["bag", "sneaker"], 5)
    (root / "bag").rename(root / name)
    with pytest.raises(DataError) as caught:
        discover(root, SPLIT, seed=0, duplicates="warn")
    message = str(caught.value)
    assert "its name holds a control or bidirectional character" in message and "rename the folder" in message
    assert printable(name) in message and message.isprintable() and "\u202e" not in message
