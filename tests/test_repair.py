"""The int8 repair (edgeclf.export.repair): a float model whose full-integer int8 collapses (an
outlier planted in its head: tests.helpers.plant_int8_outlier) is repaired by each runtime's path
(TFLite, ONNX Runtime, OpenVINO on the ONNX file), the layers recorded as float are float in the
file, and a file that passed is never repaired."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.export.repair import fewest_float_layers, fewest_layers_kept
from edgeclf.runtime import read_artifacts

runner = CliRunner()
MIXED = ["tflite-int8-ptq-mixed", "onnx-int8-ptq-mixed", "openvino-int8-ptq-mixed"]


def _entries(run):
    return {a.name: a for a in read_artifacts(run)}


@pytest.mark.parametrize("threshold", [1, 2, 3, 5, 8, 13, 32])
def test_the_search_finds_the_fewest_layers_that_hold(threshold):
    """With a ranking under which k layers hold from `threshold` on, the search returns the
    threshold, in at most 2 log2(limit) + 1 tries, never trying 0 (the full int8 file failed)."""
    tried = []

    def holds(k):
        tried.append(k)
        return k >= threshold

    assert fewest_float_layers(32, holds) == threshold
    assert len(tried) <= 11 and min(tried) >= 1 and max(tried) <= 32


def test_the_search_gives_up_at_its_limit():
    tried = []
    assert fewest_float_layers(6, lambda k: tried.append(k) or False) is None
    assert tried == [1, 2, 4, 6]


def test_layers_that_the_others_hold_without_are_dropped_after_the_search():
    """Ranks 0 and 3 are what matter: the prefix search keeps 0-3, then 2 and 1 are dropped; a
    ranking where nothing holds returns the limit's prefix, not holding."""
    tried = []

    def holds(ranks):
        tried.append(ranks)
        return {0, 3} <= set(ranks)

    assert fewest_layers_kept(16, holds) == ((0, 3), True)
    assert tried == [(0,), (0, 1), (0, 1, 2, 3), (0, 1, 2), (0, 1, 3), (0, 3), (3,)]  # each set once
    assert fewest_layers_kept(3, lambda ranks: False) == ((0, 1, 2), False)


@pytest.mark.slow  # an export with its repairs: about 10 s
def test_a_collapsed_int8_file_is_repaired_by_every_runtime(repaired_run):
    """The planted model's int8 files fail (they answer with the head's bias); each is repaired by
    keeping the head alone in float, and the repaired files pass the gate on the same images; the
    export succeeds, the failed files staying in the index as failed, repaired."""
    pytest.importorskip("openvino")
    run, result = repaired_run
    assert result.exit_code == 0, result.output
    entries = _entries(run)
    for name in ("tflite-int8-ptq", "onnx-int8-ptq", "openvino-int8-ptq", "openvino-int8-nncf"):
        failed = entries[name]
        assert failed.status == "failed" and failed.validation["decision"] == "fail", name
        assert failed.validation["drop_points"] > 30, name
    assert entries["tflite-int8-ptq"].validation["repaired_by"] == "tflite-int8-ptq-mixed"
    assert entries["onnx-int8-ptq"].validation["repaired_by"] == "onnx-int8-ptq-mixed"
    # OpenVINO's files (edgeclf's QDQ file and NNCF's) by the repaired file on OpenVINO
    assert entries["openvino-int8-ptq"].validation["repaired_by"] == "openvino-int8-ptq-mixed"
    assert entries["openvino-int8-nncf"].validation["repaired_by"] == "openvino-int8-ptq-mixed"
    for name in MIXED:
        mixed = entries[name]
        assert mixed.status == "ok" and mixed.precision == "int8-mixed", name
        assert mixed.validation["decision"] in ("pass", "inconclusive"), name
        assert mixed.validation["gate"]["estimate"] <= mixed.validation["max_drop"], name
        plain = entries[mixed.repair_record["repairs"][0]]  # the same I/O as the file it repairs (TFLite: uint8)
        assert (mixed.input.dtype, mixed.output.dtype) == (plain.input.dtype, plain.output.dtype), name
        layers = mixed.repair_record["float_layers"]
        # the head, and nothing else: the dense layer is 96 of the model's MACs
        assert len(layers) == 1 and layers[0]["op"] in ("FULLY_CONNECTED", "Gemm", "MatMul"), (name, layers)
        assert "head_dense" in layers[0]["name"] and 0 < mixed.repair_record["float_macs_share"] < 0.001, name
        if name != "openvino-int8-ptq-mixed":  # the search's record (the OpenVINO entry runs the ONNX file)
            assert mixed.repair_record["tried"] == [
                {
                    "ranks": [0],
                    "drop_points": mixed.validation["gate"]["estimate"],
                    "decision": mixed.validation["decision"],
                    "holds": True,
                }
            ]
    assert entries["tflite-int8-ptq-mixed"].repair_record["tried"] and entries["tflite-int8-ptq"].bytes
    assert "repaired: tflite-int8-ptq-mixed: 1 layer(s) kept in float" in " ".join(result.output.split())


@pytest.mark.slow
def test_the_float_layers_recorded_are_float_in_the_file(repaired_run):
    """The precision check reads the file: the repaired files pass `edgeclf validate` as they are,
    and fail as not integer when the record names a layer that the file quantized (or none)."""
    run, _ = repaired_run
    run = shutil.copytree(run, run.parent / "edited")
    result = runner.invoke(
        app, ["validate", str(run), "--artifact", "tflite-int8-ptq-mixed", "--artifact", "onnx-int8-ptq-mixed"]
    )
    assert result.exit_code == 0, result.output
    from edgeclf.export import tflite, tflite_repair

    entries = _entries(run)
    ops = tflite_repair.full_integer_ops((run / entries["tflite-int8-ptq-mixed"].path).read_bytes())
    head = [op for op in ops if op["op"] == "FULLY_CONNECTED"]
    assert len(head) == 1 and head[0]["weight_dtype"] == "float32" and head[0]["dtype"] == "float32"
    assert all(op["weight_dtype"] == "int8" for op in ops if op["weight_dtype"] and op["op"] != "FULLY_CONNECTED")
    conv = next(op["name"] for op in ops if op["op"] == "CONV_2D")
    index = run / "export" / "artifacts.json"
    data = json.loads(index.read_text())
    for entry in data["artifacts"]:
        if entry["name"] == "tflite-int8-ptq-mixed":
            entry["repair_record"]["float_layers"] = [{"name": conv, "op": "CONV_2D", "macs": 1, "error": 1.0}]
        if entry["name"] == "onnx-int8-ptq-mixed":
            entry["repair_record"]["float_layers"] = []
    index.write_text(json.dumps(data))
    for name, message in (
        ("tflite-int8-ptq-mixed", "recorded as kept in float, is quantized in the file"),
        ("onnx-int8-ptq-mixed", "keep float weights"),
    ):
        result = runner.invoke(app, ["validate", str(run), "--artifact", name])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
        assert _entries(run)[name].validation["failure"] == "not_integer"
    with pytest.raises(Exception, match="is quantized in the file"):
        tflite.check_precision(
            (run / entries["tflite-int8-ptq-mixed"].path).read_bytes(), "int8-mixed", "uint8", [conv]
        )


@pytest.mark.slow
def test_without_repair_the_export_fails_and_writes_no_mixed_file(repaired_run, tmp_path):
    """--no-repair: the collapsed int8 files fail the export (exit 2) and nothing is repaired; an
    earlier export's repaired files are removed with their entries (they repaired older files)."""
    run, _ = repaired_run
    run = shutil.copytree(run, tmp_path / "run")
    result = runner.invoke(
        app, ["export", str(run), "--int8", "--int8-source", "ptq", "--no-repair", "--formats", "tflite"]
    )
    assert result.exit_code == 2 and "tflite-int8-ptq failed validation" in result.output
    entries = _entries(run)
    assert "tflite-int8-ptq-mixed" not in entries and not (run / "export" / "model_int8_ptq_mixed.tflite").exists()
    assert "repaired_by" not in entries["tflite-int8-ptq"].validation


@pytest.mark.slow
def test_a_file_that_passed_is_never_repaired(exported):
    """The fixture recipe's int8 files pass their gates: no int8-mixed artifact, no repair record."""
    entries = _entries(exported)
    assert all(a.status == "ok" for a in entries.values())
    assert not [a for a in entries.values() if a.precision == "int8-mixed" or a.repair_record]


@pytest.mark.slow
def test_the_debuggers_ranking_repairs_the_planted_file_too(repaired_run, tmp_path):
    """export.repair_ranking debugger: TensorFlow's QuantizationDebugger and ONNX Runtime's QDQ
    debugger rank the head first (its rmse/scale and its added noise are the largest by far)."""
    from edgeclf.export.stage import export_run

    run = shutil.copytree(repaired_run[0], tmp_path / "run")
    result = export_run(
        run,
        int8=True,
        overrides={
            "export.repair_ranking": "debugger",
            "export.int8_source": "ptq",
            "export.formats": ["tflite", "onnx"],
        },
    )
    mixed = {a.name: a for a in result.artifacts if a.precision == "int8-mixed"}
    assert sorted(mixed) == ["onnx-int8-ptq-mixed", "tflite-int8-ptq-mixed"]
    for entry in mixed.values():
        assert entry.status == "ok" and entry.repair_record["ranking"] == "debugger"
        assert [layer["op"] for layer in entry.repair_record["float_layers"]] in (["FULLY_CONNECTED"], ["Gemm"])
        assert "debugger" in entry.repair_record["metric"].lower() or "qdq_loss_debug" in entry.repair_record["metric"]


@pytest.mark.slow
def test_bench_times_the_repair_beside_the_file_it_replaced_and_never_recommends_that(repaired_run, tmp_path):
    """edgeclf bench measures a failed int8 file that a repair replaced beside its repair (the
    repair's latency over it recorded as vs_full_int8) and the report never recommends it."""
    from edgeclf.core.config import BenchConfig
    from edgeclf.measure.bench import run_bench
    from edgeclf.measure.report import recommend, rows

    run = shutil.copytree(repaired_run[0], tmp_path / "run")
    options = BenchConfig(threads=1, warmup=2, runs=5, seconds=None, batch_sizes=[1], device="cpu", engine="auto")
    bench = run_bench(run, options).document
    measured = bench["artifacts"]
    assert measured["tflite-int8-ptq"]["status"] == "failed validation, repaired by tflite-int8-ptq-mixed"
    mixed = measured["tflite-int8-ptq-mixed"]
    assert mixed["repairs"] == ["tflite-int8-ptq"] and mixed["vs_full_int8"] > 0
    assert mixed["vs_full_int8"] == pytest.approx(
        mixed["batches"][0]["p50_ms"] / measured["tflite-int8-ptq"]["batches"][0]["p50_ms"]
    )
    assert "status" not in measured[recommend(bench, None, False).artifact]
    table = {r["artifact"]: r for r in rows(bench, None)}
    assert table["tflite-int8-ptq"]["precision"] == "int8-ptq (failed, repaired)"
    assert table["tflite-int8-ptq-mixed"]["repair ms ×"] != "-"
