"""The coalescer: requests of one event-loop turn share a model call, and each gets its own rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from flywheel_mlops.serving.coalescer import Coalescer


class CountingModel:
    """Sums each row; records the batch sizes it was called with."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        self.batches.append(len(matrix))
        return matrix.sum(axis=1).astype(np.float64)


def _rows(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count * 2, dtype=np.float32).reshape(count, 2)


def test_requests_of_one_turn_share_one_call_and_get_their_own_rows() -> None:
    model, coalescer = CountingModel(), Coalescer(max_rows=256)
    key = object()
    matrices = [_rows(0, 1), _rows(100, 3), _rows(200, 2)]

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(coalescer.predict(key, model, m) for m in matrices))

    results = asyncio.run(main())
    assert model.batches == [6]
    for matrix, result in zip(matrices, results, strict=True):
        np.testing.assert_array_equal(result, matrix.sum(axis=1))


def test_a_lone_request_is_predicted_alone() -> None:
    model, coalescer = CountingModel(), Coalescer(max_rows=256)
    result = asyncio.run(coalescer.predict(object(), model, _rows(0, 4)))
    assert model.batches == [4]
    np.testing.assert_array_equal(result, _rows(0, 4).sum(axis=1))


def test_different_models_are_never_mixed() -> None:
    champion, canary, coalescer = CountingModel(), CountingModel(), Coalescer(max_rows=256)
    a, b = object(), object()

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(
            coalescer.predict(a, champion, _rows(0, 1)),
            coalescer.predict(b, canary, _rows(10, 2)),
            coalescer.predict(a, champion, _rows(20, 1)),
        )

    results = asyncio.run(main())
    assert champion.batches == [2]
    assert canary.batches == [2]
    np.testing.assert_array_equal(results[1], _rows(10, 2).sum(axis=1))
    np.testing.assert_array_equal(results[2], _rows(20, 1).sum(axis=1))


def test_later_turns_start_a_new_batch() -> None:
    calls: list[int] = []
    model, coalescer = CountingModel(), Coalescer(max_rows=256, on_call=calls.append)
    key = object()

    async def main() -> None:
        await coalescer.predict(key, model, _rows(0, 1))
        await coalescer.predict(key, model, _rows(0, 2))

    asyncio.run(main())
    assert model.batches == [1, 2]
    assert calls == [1, 1]


def test_a_model_error_reaches_every_request_of_the_batch() -> None:
    coalescer = Coalescer(max_rows=256)

    def broken(matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("booster exploded")

    async def main() -> list[object]:
        return await asyncio.gather(
            coalescer.predict("k", broken, _rows(0, 1)),
            coalescer.predict("k", broken, _rows(0, 1)),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    assert [str(o) for o in outcomes] == ["booster exploded"] * 2


def test_a_cancelled_request_does_not_disturb_the_others() -> None:
    model, coalescer = CountingModel(), Coalescer(max_rows=256)

    async def main() -> np.ndarray:
        gone = asyncio.ensure_future(coalescer.predict("k", model, _rows(0, 1)))
        kept = asyncio.ensure_future(coalescer.predict("k", model, _rows(50, 1)))
        await asyncio.sleep(0)  # both joined the batch
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await kept

    result = asyncio.run(main())
    np.testing.assert_array_equal(result, _rows(50, 1).sum(axis=1))


def test_a_batch_stops_at_max_rows_and_the_rest_start_another() -> None:
    """No shared call on the event loop is longer than one request's may be."""
    calls: list[int] = []
    model, coalescer = CountingModel(), Coalescer(max_rows=4, on_call=calls.append)
    matrices = [_rows(0, 3), _rows(10, 1), _rows(20, 2), _rows(30, 2)]

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(coalescer.predict("k", model, m) for m in matrices))

    results = asyncio.run(main())
    assert model.batches == [4, 4]
    assert calls == [2, 2]  # requests per model call, as the metric sees them
    for matrix, result in zip(matrices, results, strict=True):
        np.testing.assert_array_equal(result, matrix.sum(axis=1))
