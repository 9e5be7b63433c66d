"""Smooth weighted round-robin (``pulse.domain.rotation``): examples and property tests.

The properties are the promises a rotation makes to the agents in it: over any run of
``sum(weights)`` consecutive picks everyone gets exactly their weight's share; a paused agent gets
nothing and keeps their place; the preview is the pick, minus the advancing.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.domain.rotation import MAX_WEIGHT, MIN_WEIGHT, RotationSlot, pick_next, preview_next


def run(members: list[RotationSlot], picks: int) -> tuple[list[int | None], list[RotationSlot]]:
    """``picks`` picks in a row, as the repository does them: each one's state feeds the next."""
    picked = []
    for _ in range(picks):
        outcome = pick_next(members)
        picked.append(outcome.user_id)
        members = [RotationSlot(m.user_id, m.weight, m.paused, current)
                   for m, current in zip(members, outcome.currents, strict=True)]
    return picked, members


weight_lists = st.lists(st.integers(MIN_WEIGHT, MAX_WEIGHT), min_size=1, max_size=8)
small_weight_lists = st.lists(st.integers(MIN_WEIGHT, 12), min_size=1, max_size=6)


def fresh(weights: list[int], paused: list[bool] | None = None) -> list[RotationSlot]:
    paused = paused or [False] * len(weights)
    return [RotationSlot(user_id=100 + index, weight=weight, paused=stop)
            for index, (weight, stop) in enumerate(zip(weights, paused, strict=True))]


# --- examples ------------------------------------------------------------------------------------


def test_weights_3_2_1_interleave_rather_than_run_in_blocks() -> None:
    a, b, c = 100, 101, 102
    picked, after = run(fresh([3, 2, 1]), 12)
    assert picked == [a, b, a, c, b, a] * 2
    assert [m.current for m in after] == [0, 0, 0]  # a full cycle ends where it started


def test_equal_weights_take_turns_in_member_order() -> None:
    picked, _ = run(fresh([1, 1, 1]), 7)
    assert picked == [100, 101, 102, 100, 101, 102, 100]


def test_no_members_or_all_paused_picks_nobody_and_changes_nothing() -> None:
    assert pick_next([]).user_id is None
    paused = [RotationSlot(1, 2, paused=True, current=5), RotationSlot(2, 1, paused=True, current=-5)]
    outcome = pick_next(paused)
    assert outcome.user_id is None and outcome.currents == (5, -5) and outcome.changed(paused) == {}


def test_changed_lists_only_the_members_whose_state_moved() -> None:
    members = [RotationSlot(1, 1), RotationSlot(2, 1, paused=True, current=7), RotationSlot(3, 2)]
    outcome = pick_next(members)
    assert outcome.user_id == 3
    assert outcome.changed(members) == {1: 1, 3: -1}


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(weights=weight_lists, offset=st.integers(0, 10_000))
def test_any_window_of_sum_of_weights_picks_gives_each_member_exactly_its_weight(weights: list[int],
                                                                                 offset: int) -> None:
    total = sum(weights)
    start = offset % total
    picked, _ = run(fresh(weights), start + 2 * total)
    expected = {100 + index: weight for index, weight in enumerate(weights)}
    window = Counter(picked[start:start + total])
    assert dict(window) == expected
    # ... and so does every other window: the picks repeat with period sum(weights).
    assert picked[start + total:] == picked[start:start + total]


@settings(max_examples=100, deadline=None)
@given(weights=small_weight_lists)
def test_every_sliding_window_of_a_long_run_is_exact(weights: list[int]) -> None:
    total = sum(weights)
    picked, _ = run(fresh(weights), 3 * total)
    counts = Counter(picked[:total])
    expected = Counter({100 + index: weight for index, weight in enumerate(weights)})
    assert counts == expected
    for end in range(total, len(picked)):  # slide the window one pick at a time
        counts[picked[end]] += 1
        counts[picked[end - total]] -= 1
        assert +counts == expected, end - total + 1


@settings(max_examples=200, deadline=None)
@given(data=st.data(), weights=small_weight_lists)
def test_paused_members_are_never_picked_and_keep_their_state(data: st.DataObject, weights: list[int]) -> None:
    paused = data.draw(st.lists(st.booleans(), min_size=len(weights), max_size=len(weights)))
    warm_up = data.draw(st.integers(0, 30))
    _, members = run(fresh(weights), warm_up)  # somewhere into the cycle
    members = [RotationSlot(m.user_id, m.weight, stop, m.current) for m, stop in zip(members, paused, strict=True)]
    active = {m.user_id: m.weight for m in members if not m.paused}
    picks = 2 * sum(active.values()) or 3
    picked, after = run(members, picks)
    if not active:
        assert picked == [None] * picks
    else:
        assert set(picked) <= set(active)
    for before, later in zip(members, after, strict=True):
        if before.paused:
            assert later.current == before.current
    # Nothing drifts: a pick hands out exactly what it takes back.
    assert sum(m.current for m in after) == sum(m.current for m in members)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), weights=small_weight_lists)
def test_the_preview_is_the_next_pick_and_advances_nothing(data: st.DataObject, weights: list[int]) -> None:
    _, members = run(fresh(weights), data.draw(st.integers(0, 50)))
    before = list(members)
    upcoming = preview_next(members)
    assert members == before
    assert preview_next(members) == upcoming == pick_next(members).user_id
