"""The entry point's decisions: which bundle source, whether gRPC may run, what is refused."""

from __future__ import annotations

import pytest

from flywheel_inference.server import KSERVE_MODEL_DIR, build_parser, plan
from flywheel_mlops.serving.bundle_source import ModelDirSource, RegistrySource
from flywheel_mlops.settings import Settings


@pytest.fixture(autouse=True)
def no_flywheel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults come from FLYWHEEL_* variables; these tests want the built-in ones."""
    for name in ("FLYWHEEL_REGISTRY_URI", "FLYWHEEL_MODEL_NAME", "FLYWHEEL_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def parse(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser(Settings(_env_file=None)).parse_args(list(argv))


def test_without_arguments_it_serves_kserves_model_mount_with_grpc() -> None:
    decided = plan(parse())
    assert decided.source == ModelDirSource(KSERVE_MODEL_DIR, 1)
    assert decided.enable_grpc is True


def test_a_registry_serves_the_alias_of_the_named_model() -> None:
    decided = plan(
        parse("--registry_uri", "reg", "--model_name", "eta", "--alias", "canary", "--nthread", "2")
    )
    assert isinstance(decided.source, RegistrySource)
    assert (decided.source.name, decided.source.alias, decided.source.threads) == (
        "eta",
        "canary",
        2,
    )


def test_model_dir_wins_over_the_registry_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the chart the shared ConfigMap sets FLYWHEEL_REGISTRY_URI and the InferenceService
    passes --model_dir: the predictor serves the model dir instead of exiting."""
    monkeypatch.setenv("FLYWHEEL_REGISTRY_URI", "memory://models")
    environment = build_parser(Settings(_env_file=None))
    assert plan(environment.parse_args(["--model_dir", "/mnt/models"])).source == ModelDirSource(
        "/mnt/models", 1
    )
    served = plan(environment.parse_args([])).source
    assert isinstance(served, RegistrySource)
    assert served.registry.uri == "memory://models"


def test_a_loopback_host_turns_grpc_off_and_says_why() -> None:
    decided = plan(parse("--host", "127.0.0.1"))
    assert decided.enable_grpc is False
    assert "every interface" in decided.grpc_note


@pytest.mark.parametrize(
    "argv",
    [
        ("--model_dir", "d", "--registry_uri", "r"),
        ("--workers", "2"),
    ],
    ids=["two sources", "workers"],
)
def test_contradictory_arguments_stop_the_server(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        plan(parse(*argv))


def test_kserves_own_arguments_are_accepted() -> None:
    args = parse("--http_port", "9000", "--grpc_port", "9001", "--model_name", "m")
    assert (args.http_port, args.grpc_port, args.model_name) == (9000, 9001, "m")


def test_the_kserve_hook_that_adds_the_timing_middleware_still_exists() -> None:
    """FlywheelModelServer leaves KServe's timing middleware out by replacing
    RESTServer._add_middlewares; if KServe renamed that hook, the middleware (a log line and two
    getrusage calls per request) would silently come back."""
    import inspect

    from kserve.protocol.rest.server import RESTServer

    assert "TimingMiddleware" in inspect.getsource(RESTServer._add_middlewares)
    assert "self._add_middlewares(app)" in inspect.getsource(RESTServer.create_application)
