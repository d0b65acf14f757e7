"""PickupPredictor in process: readiness from verified bundles, V1/V2 answers, errors, hot swap."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client import CollectorRegistry

from flywheel_inference.metrics import ServingMetrics
from flywheel_inference.predictor import PickupPredictor, PredictorLimits
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import MANIFEST, BundleContents, sha256_of, write_bundle
from flywheel_mlops.serving.bundle_source import ModelDirSource, RegistrySource
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.serving.served_model import SelfTestFailed, ServedModel

NAME = "pickup-eta"


@pytest.fixture
def registry(tmp_path: Path, bundle_contents: BundleContents) -> Registry:
    """Two published versions of the shared test model; the champion is v0001."""
    store = Registry(str(tmp_path / "registry"))
    for index in range(2):
        staged = tmp_path / f"staged-{index}"
        write_bundle(staged, bundle_contents)
        store.publish(NAME, staged)
    store.set_alias(NAME, "v0001")
    return store


@pytest.fixture
def rows(bundle_contents: BundleContents) -> pd.DataFrame:
    """Clean input records, as clients send them."""
    return bundle_contents.reference[bundle_contents.schema.names].head(40)


def make(source: Any, **limits: Any) -> PickupPredictor:
    return PickupPredictor(
        NAME, source, ServingMetrics(CollectorRegistry()), PredictorLimits(**limits)
    )


def predict(
    predictor: PickupPredictor, payload: Any, headers: dict[str, str] | None = None
) -> tuple[Any, dict[str, str]]:
    response_headers: dict[str, str] = {}
    answer = asyncio.run(predictor.predict(payload, headers or {}, response_headers))
    return answer, response_headers


def v2_request(rows: pd.DataFrame, schema: Any, request_id: str | None = None) -> InferRequest:
    inputs = []
    for field in schema.fields:
        column = rows[field.name]
        if field.kind in ("string", "timestamp"):
            data = column.astype(str).tolist()
            inputs.append(InferInput(field.name, [len(rows)], "BYTES", data))
        else:
            inputs.append(InferInput(field.name, [len(rows)], "FP64", column.tolist()))
    return InferRequest(NAME, inputs, request_id=request_id)


def expected_minutes(registry: Registry, rows: pd.DataFrame) -> np.ndarray:
    bundle = registry.load(NAME, "v0001")
    return bundle.predict(bundle.schema.frame_from_records(frame_to_records(rows)))


def test_a_verified_self_tested_bundle_makes_the_model_ready(registry: Registry) -> None:
    predictor = make(ModelDirSource(str(registry.fetch(NAME, "v0001"))))
    assert predictor.ready is False
    assert predictor.load() is True
    assert predictor.ready is True
    assert predictor.served is not None
    assert predictor.served.version == "v0001"


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (
            lambda f: (f / "model.ubj").write_bytes(b"\x00" + (f / "model.ubj").read_bytes()[1:]),
            "model.ubj does not match",
        ),
        (lambda f: (f / "notes.txt").write_text("hello"), "notes.txt is not listed"),
        (lambda f: (f / MANIFEST).unlink(), "MANIFEST.json"),
    ],
    ids=["changed", "added", "no manifest"],
)
def test_a_tampered_bundle_leaves_the_model_not_ready_with_the_reason(
    registry: Registry, damage: Any, says: str
) -> None:
    folder = registry.fetch(NAME, "v0001")
    damage(folder)
    predictor = make(ModelDirSource(str(folder)))
    assert predictor.load() is False
    assert predictor.ready is False
    assert says in predictor.not_ready_reason
    with pytest.raises(ModelNotReady):
        predict(predictor, {"instances": [{}]})


def _rehash(folder: Path, name: str) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = sha256_of(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_bundle_that_does_not_reproduce_its_reference_fails_the_self_test(
    registry: Registry,
) -> None:
    folder = registry.fetch(NAME, "v0001")
    reference = pd.read_parquet(folder / "reference.parquet")
    reference.loc[3, "prediction"] += 5.0
    reference.to_parquet(folder / "reference.parquet", index=False)
    _rehash(folder, "reference.parquet")  # the hashes agree: only the self-test can tell
    with pytest.raises(SelfTestFailed, match="reference row 3"):
        ServedModel.load(folder)
    predictor = make(ModelDirSource(str(folder)))
    assert predictor.load() is False
    assert "self-test" in predictor.not_ready_reason


def test_v1_answers_minutes_version_and_the_request_id(
    registry: Registry, rows: pd.DataFrame
) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"))
    predictor.load()
    answer, headers = predict(
        predictor, {"instances": frame_to_records(rows)}, {"x-request-id": "abc-1"}
    )
    assert np.allclose(answer["predictions"], expected_minutes(registry, rows))
    assert answer["model_version"] == "v0001" == headers["x-model-version"]
    assert answer["request_id"] == "abc-1" == headers["x-request-id"]


@pytest.mark.parametrize("offload_rows", [1000, 5], ids=["inline", "worker thread"])
def test_v2_answers_the_same_minutes_as_v1(
    registry: Registry, rows: pd.DataFrame, offload_rows: int
) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"), offload_rows=offload_rows)
    predictor.load()
    schema = registry.load(NAME, "v0001").schema
    answer, headers = predict(predictor, v2_request(rows, schema, request_id="v2-id"))
    output = answer.outputs[0]
    assert output.name == "pickup_minutes"
    assert output.shape == [len(rows)]
    assert np.allclose(output.data, expected_minutes(registry, rows))
    assert answer.id == "v2-id" == headers["x-request-id"]
    assert answer.model_version == "v0001"


def test_a_binary_output_is_returned_when_the_client_asks(
    registry: Registry, rows: pd.DataFrame
) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"))
    predictor.load()
    request = v2_request(rows, registry.load(NAME, "v0001").schema)
    request.parameters = {"binary_data_output": True}
    answer, _ = predict(predictor, request)
    body, json_length = answer.to_rest()
    assert isinstance(body, bytes)
    assert json_length
    assert np.allclose(
        np.frombuffer(body[json_length:], dtype=np.float64), expected_minutes(registry, rows)
    )


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"instances": [{"zone": "Z00"}]}, "request_time is missing in record 0"),
        ({"instances": []}, "at least one record"),
        ({"rows": []}, '"instances"'),
        ([1, 2], "got array"),
        ({"instances": [{}] * 11}, "at most 10"),
    ],
    ids=["missing field", "empty", "no instances", "not an object", "over max batch"],
)
def test_bad_v1_bodies_raise_kserves_invalid_input_with_the_reason(
    registry: Registry, payload: Any, says: str
) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"), max_batch=10)
    predictor.load()
    with pytest.raises(InvalidInput, match=None) as raised:
        predict(predictor, payload)
    assert says in str(raised.value)


def test_swap_serves_the_new_version_and_refuses_a_broken_one(registry: Registry) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"))
    predictor.load()
    assert predictor.swap_to("v0002") is True
    assert predictor.served is not None
    assert predictor.served.version == "v0002"
    broken = registry.fetch(NAME, "v0001") / "features.json"
    broken.write_text(broken.read_text() + " ")
    assert predictor.swap_to("v0001") is False
    assert predictor.served.version == "v0002"
    assert predictor.ready


def test_start_follows_the_alias_until_stopped(registry: Registry) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"), watch_interval=0.05)
    predictor.load()
    predictor.start()
    try:
        registry.set_alias(NAME, "v0002")
        deadline = time.monotonic() + 10
        while predictor.served is None or predictor.served.version != "v0002":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        predictor.stop()
    assert predictor.ready is False  # stopped by the server's shutdown


def test_metadata_lists_schema_inputs_and_the_minutes_output(registry: Registry) -> None:
    predictor = make(RegistrySource(registry, NAME, "champion"))
    predictor.load()
    schema = registry.load(NAME, "v0001").schema
    assert [i["name"] for i in predictor.get_input_types()] == schema.names
    assert predictor.get_output_types() == [
        {"name": "pickup_minutes", "datatype": "FP64", "shape": [-1]}
    ]
