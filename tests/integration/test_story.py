"""The whole loop at small size: real servers on loopback, the KFP local runner, Evidently."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from flywheel_mlops.demo.run import StoryConfig, run_story
from flywheel_mlops.simulator import SimulationConfig

# The whole demo in the fixture: 2 min on a quiet 2-core machine, far longer when it is shared.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.pipeline,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

# The demo at its default size (about 2,200 trips a day, so a model retrained on the
# post-closure days has enough rows to learn the new world): the scenario test.
CONFIG = StoryConfig()  # the demo's own scenario: 40k trips, 18 days, closure on day 11
CLOSURE = SimulationConfig().start + timedelta(days=CONFIG.closure_day)


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    home = tmp_path_factory.mktemp("story")
    return run_story(CONFIG, home, say=lambda line: None), home


def test_normal_windows_raise_no_false_alarm(story):
    result, _ = story
    assert result.summary["false_alarms"] == 0
    normal = [d for d in result.days if d.verdict and d.day < CLOSURE]
    assert normal
    assert not any(d.retrain or d.verdict == "degraded" for d in normal)


def test_normal_days_are_judged_at_calibrated_thresholds_and_flag_no_feature(story):
    # v0001's thresholds were calibrated on the training week's one-day windows (register).
    _, home = story
    decisions = [
        json.loads(path.read_text())
        for path in sorted(home.glob("**/policies/*/monitor/*/decision.json"))
    ]
    normal = [d for d in decisions if d["window"]["start"] < CLOSURE.isoformat()]
    assert normal
    for decision in normal:
        drift = decision["drift"]
        assert drift["calibration"]["calibrated"] is True
        assert drift["calibration"]["windows"] == 7
        assert drift["drifted_features"] == []
        assert decision["verdict"] == "ok"
        features = drift["features"]
        assert all(f["calibrated"] for f in features.values())
        assert {n for n, f in features.items() if f["seasonal"]} == {
            "temperature_c",
            "precipitation_mm",
            "weather",
        }


def test_the_closure_triggers_a_retrain_within_a_few_windows(story):
    result, _ = story
    assert result.summary["windows_to_retrain"] is not None
    assert 0 < result.summary["windows_to_retrain"] <= 4


def test_the_retrained_model_goes_out_as_a_canary_and_is_promoted(story):
    result, _home = story
    actions = [r["action"] for r in result.rollouts if r["action"] != "wait"]
    assert actions[:2] == ["canary", "promote"]
    assert result.summary["champion"] != "v0001"
    canary_days = [d for d in result.days if len(d.served_by_version) == 2]
    assert canary_days, "some day was served by both versions"


def test_v2_error_on_post_closure_traffic_is_at_most_0_8x_v1s(story):
    result, _ = story
    ratio = result.summary["v2_over_v1"]
    assert not math.isnan(ratio)
    assert ratio <= 0.8


def test_every_served_request_reached_the_prediction_log_with_its_label(story):
    result, home = story
    from flywheel_mlops.predictions import PredictionStore

    counts = PredictionStore(f"sqlite:///{result.folder / 'predictions.sqlite'}").counts()
    assert counts["predictions"] == sum(d.requests for d in result.days)
    assert counts["feedback"] == counts["predictions"]
    assert (home / "story-report.html").stat().st_size > 100_000
    assert json.loads((result.folder / "rollouts.jsonl").read_text().splitlines()[0])["reason"]
