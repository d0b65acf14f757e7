"""Split, train and evaluate: time order, the cheapest accurate model, honest comparisons."""

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops import models
from flywheel_mlops.errors import ConfigError
from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.scoring import error_summary
from flywheel_mlops.testing.quick_train import build_bundle
from flywheel_mlops.training.evaluate import evaluate
from flywheel_mlops.training.split import split
from flywheel_mlops.training.train import train


@pytest.fixture(scope="module")
def parts(spec, clean_frame):
    return split(spec, clean_frame)


@pytest.fixture(scope="module")
def pipeline(spec, parts) -> FeaturePipeline:
    return FeaturePipeline.fit(spec, parts[0])


def test_split_is_consecutive_in_time(parts):
    train_part, val_part, test_part = parts
    assert train_part["request_time"].max() <= val_part["request_time"].min()
    assert val_part["request_time"].max() <= test_part["request_time"].min()
    total = sum(len(p) for p in parts)
    assert len(test_part) == pytest.approx(0.15 * total, abs=2)


@pytest.mark.parametrize(("validation", "test"), [(0.0, 0.1), (0.6, 0.5), (0.2, 1.2)])
def test_split_rejects_impossible_fractions(spec, clean_frame, validation, test):
    with pytest.raises(ConfigError, match="fractions"):
        split(spec, clean_frame, validation, test)


@pytest.fixture(scope="module")
def trained(spec, parts, pipeline):
    return train(spec, pipeline, parts[0], parts[1], ["xgboost", "hist_gbm", "ridge"])


def test_every_family_is_tried_and_the_choice_is_explained(trained):
    assert {c.family for c in trained.candidates} == {"xgboost", "hist_gbm", "ridge"}
    assert trained.chosen.family in trained.reason


def test_chosen_model_is_the_fastest_within_tolerance(trained):
    best = min(c.val_mae for c in trained.candidates)
    eligible = [c for c in trained.candidates if c.val_mae <= best * 1.02]
    assert trained.chosen.latency_ms == min(c.latency_ms for c in eligible)


def test_huge_tolerance_picks_the_fastest_and_zero_the_most_accurate(spec, parts, pipeline):
    loose = train(spec, pipeline, parts[0], parts[1], ["xgboost", "ridge"], tolerance=100.0)
    assert loose.chosen.latency_ms == min(c.latency_ms for c in loose.candidates)
    strict = train(spec, pipeline, parts[0], parts[1], ["xgboost", "ridge"], tolerance=0.0)
    assert strict.chosen.val_mae == min(c.val_mae for c in strict.candidates)


def test_search_budget_tries_more_candidates(spec, parts, pipeline):
    result = train(spec, pipeline, parts[0], parts[1], ["ridge"], search_seconds=0.5)
    assert len(result.candidates) > 1


def test_unknown_family_is_rejected_with_the_known_ones(spec, parts, pipeline):
    with pytest.raises(ConfigError, match="xgboost"):
        train(spec, pipeline, parts[0], parts[1], ["lightgbm"])


def test_model_beats_the_rule_based_baseline_by_far(spec, parts, pipeline, trained):
    metrics = evaluate(spec, trained.model, pipeline, parts[2])
    assert metrics["test"]["mae"] <= 0.8 * metrics["baseline"]["mae"]
    assert metrics["beats_baseline"]
    assert metrics["beats_champion"]
    assert set(metrics["slices"]) == {"zone", "weather", "hour"}
    assert sum(s["n"] for s in metrics["slices"]["zone"].values()) == len(parts[2])


@pytest.mark.parametrize("family", models.FAMILIES)
def test_every_family_round_trips_through_its_safe_format(spec, parts, pipeline, family, tmp_path):
    x = pipeline.transform(parts[0].head(500))
    y = parts[0][spec.target].head(500).to_numpy()
    model = models.fit(family, dict(models.DEFAULT_PARAMS[family]), x, y, seed=0)
    name = models.save(model, family, tmp_path)
    assert name in ("model.ubj", "model.skops")
    np.testing.assert_allclose(models.load(tmp_path / name).predict(x), model.predict(x), rtol=1e-6)


def test_error_summary_reports_mae_and_p90():
    summary = error_summary(np.zeros(10), np.arange(10.0))
    assert summary["mae"] == pytest.approx(4.5)
    assert summary["p90"] == pytest.approx(8.1)
    assert summary["n"] == 10


def test_a_category_the_champion_never_saw_is_compared_on_the_rows_it_can_score(
    spec, clean_frame, tmp_path
):
    """A new zone appears exactly when the world changes: the comparison must not crash."""
    learned = spec.model_copy(update={"categories": {"weather": spec.categories["weather"]}})
    old_world = clean_frame[clean_frame["zone"] != "Z03"]
    old = build_bundle(learned, old_world)
    champion = Bundle(
        tmp_path, {"name": spec.name, "version": "v0001"}, old.features, old.schema,
        old.metrics, old.model, learned,
    )  # fmt: skip
    assert "Z03" not in champion.features.categories["zone"]
    new = build_bundle(learned, clean_frame, champion=champion, margin=0.0)
    test_part = split(learned, clean_frame)[2]
    unseen = int((test_part["zone"] == "Z03").sum())
    assert unseen > 0
    assert new.metrics["champion"]["rows_with_unseen_categories"] == unseen
    assert new.metrics["champion"]["n"] == len(test_part) - unseen
    assert "Z03" in new.features.categories["zone"], "the retrain learns the new zone"


def test_the_champion_is_not_scored_on_test_rows_it_was_fitted_or_selected_on(
    spec, parts, pipeline, trained, tmp_path
):
    """A champion trained on a later window than the candidate's test split would be scored on
    its own training rows (6.39 against about 9 out of sample): those rows are left out."""
    test_part = parts[2]
    stamps = pd.to_datetime(test_part[spec.timestamp]).sort_values()
    trained_until = stamps.iloc[len(stamps) // 2]
    champion = Bundle(
        tmp_path,
        {"name": spec.name, "version": "v0001", "trained_on": [str(stamps.iloc[0]), None],
         "selected_on": [None, str(trained_until)]},
        pipeline, None, {}, trained.model, spec,
    )  # fmt: skip
    metrics = evaluate(spec, trained.model, pipeline, test_part, champion)
    inside = int((pd.to_datetime(test_part[spec.timestamp]) <= trained_until).sum())
    assert metrics["champion"]["rows_the_champion_trained_on"] == inside
    assert metrics["champion"]["n"] == len(test_part) - inside
