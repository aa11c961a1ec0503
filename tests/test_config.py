import pytest
import yaml

from edgeclf.core.config import Config, load_config, packaged_config
from edgeclf.core.errors import ConfigError


def test_default_yaml_holds_every_setting():
    raw = yaml.safe_load(packaged_config("default.yaml").read_text())
    cfg = load_config()
    assert cfg.to_dict() == raw  # nothing defaulted in code: the file is the single source


def test_file_overrides_defaults_and_options_override_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  image_size: 96\n  batch_size: 8\nmodel:\n  alpha: 0.5\n")
    cfg = load_config([path], {"data.image_size": 64, "model.alpha": None})
    assert (cfg.data.image_size, cfg.data.batch_size, cfg.model.alpha) == (64, 8, 0.5)
    assert cfg.model.name == "mobilenet_v2"  # untouched default


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  widht: 1.0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'model.widht'"):
        load_config([path])


def test_bad_option_names_the_option():
    with pytest.raises(ConfigError, match=r"^--image-size 7: .*greater than or equal to 32"):
        load_config(overrides={"data.image_size": 7}, option_names={"data.image_size": "--image-size"})


@pytest.mark.parametrize(
    "text, message",
    [
        ("data:\n  split: {train: 0.5, val: 0.2, test: 0.2}\n", "train \\+ val \\+ test must be 1"),
        ("model:\n  name: resnet50\n", "model.name"),
        ("train:\n  epochs: 0\n  fine_tune_epochs: 0\n", "at least 1"),
        ("- a\n- b\n", "mapping"),
        ("data: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_give_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config([path])
    assert "\n" not in str(info.value)


def test_binary_or_huge_config_files_give_one_line(tmp_path):
    binary, huge = tmp_path / "b.yaml", tmp_path / "h.yaml"
    binary.write_bytes(b"seed: \xff\xfe\x00\x01\n")
    huge.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config([binary])
    with pytest.raises(ConfigError, match="over 1 MiB"):
        load_config([huge])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "nope.yaml"])


def test_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(overrides={"seed": 7})
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    assert Config.model_validate(yaml.safe_load(path.read_text())) == cfg


def test_a_yaml_alias_bomb_or_deep_nesting_is_a_short_error_line(tmp_path):
    """Before: 332 bytes of YAML aliases under a known key turned the one-line error into a 312 MB
    repr of the expanded value (1.8 GB RSS; 370 bytes: MemoryError), and deep nesting gave
    RecursionError. Aliases are counted expanded while loading; error values are excerpts."""
    import resource

    bomb = tmp_path / "bomb.yaml"
    layers = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    bomb.write_text("\n".join(layers) + "\ntrain:\n  epochs: *i\n")
    assert bomb.stat().st_size < 400
    deep = tmp_path / "deep.yaml"
    deep.write_text("train: " + "[" * 100_000 + "]" * 100_000 + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path, message in ((bomb, "nodes with its aliases expanded, over the 100000 allowed"), (deep, "nested over 64")):
        with pytest.raises(ConfigError, match=message) as caught:
            load_config([path])
        assert len(str(caught.value)) < 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no expansion happened


def test_a_long_bad_value_is_shown_as_an_excerpt(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  optimizer: " + "x" * 100_000 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config([config])
    assert "train.optimizer" in str(caught.value) and len(str(caught.value)) < 300
