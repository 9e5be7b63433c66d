"""The ticket agenda: property tests of the workflow's fire-exactly-once loop, and its sources."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.domain import sla
from pulse.domain.agenda import (
    DUE_TOLERANCE, AgendaFacts, AgendaMemory, AgendaProbe, DueItem, TicketRules,
    agenda_of, due_items, next_item, probe_items, sla_items,
)
from pulse.domain.tickets import Priority, TicketStatus

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
FAST_SETTINGS = settings(max_examples=200, deadline=None)
FR, RES = sla.SlaMetric.FIRST_RESPONSE, sla.SlaMetric.RESOLUTION

# Coarse instants make ties (same ``at``) common; fine ones cover microsecond precision.
instants = st.one_of(
    st.integers(0, 3 * 24 * 4).map(lambda q: BASE + q * timedelta(minutes=15)),
    st.integers(0, 3 * 86_400_000_000).map(lambda us: BASE + us * MICRO),
)
due_item = st.builds(DueItem, kind=st.sampled_from(("sla", "probe", "escalation")),
                     key=st.text("ab:12", min_size=1, max_size=3), at=instants,
                     summary=st.text(max_size=10))
agendas = st.lists(due_item, max_size=12, unique_by=lambda item: (item.kind, item.key))
cycles = st.integers(0, 5)


def order(item: DueItem) -> tuple:
    return item.at, item.kind, item.key


def carry(memory: AgendaMemory) -> AgendaMemory:
    """What the workflow hands its next run across continue-as-new."""
    return AgendaMemory.model_validate(memory.model_dump(mode="json"))


def run_loop(items, memory, cycle, carry_at=None):
    """The workflow loop: sleep until the next item, fire it at its instant, remember it."""
    fired = []
    for step in range(len(items) + 1):
        if step == carry_at:
            memory = carry(memory)
        item = next_item(items, memory, cycle)
        if item is None:
            return fired, memory  # no timer at all
        assert item in due_items(items, memory, cycle, item.at)  # due when its timer fires
        fired.append(item)
        memory = memory.remember(item, cycle)
    raise AssertionError(f"the loop did not settle after {len(items)} fires: {fired}")


@FAST_SETTINGS
@given(items=agendas, cycle=cycles)
def test_each_item_fires_once_in_time_order_and_then_no_timer_is_set(items, cycle):
    fired, memory = run_loop(items, AgendaMemory(cycle=cycle), cycle)
    assert fired == sorted(items, key=order)
    assert all(order(a) <= order(b) for a, b in zip(fired, fired[1:]))
    assert Counter(item.ident for item in fired) == Counter(item.ident for item in items)
    assert all(count == 1 for count in Counter(item.ident for item in fired).values())
    assert next_item(items, memory, cycle) is None
    assert due_items(items, memory, cycle, BASE + timedelta(days=30)) == []


@FAST_SETTINGS
@given(items=agendas, cycle=cycles, data=st.data())
def test_continue_as_new_mid_loop_does_not_change_what_fires(items, cycle, data):
    carry_at = data.draw(st.integers(0, len(items)), label="continue-as-new before fire #")
    expected, _ = run_loop(items, AgendaMemory(cycle=cycle), cycle)
    fired, memory = run_loop(items, AgendaMemory(cycle=cycle), cycle, carry_at=carry_at)
    assert fired == expected
    assert carry(memory) == memory


@FAST_SETTINGS
@given(items=agendas, cycle=cycles, data=st.data())
def test_a_reopen_fires_every_item_again_exactly_once(items, cycle, data):
    partly = data.draw(st.integers(0, len(items)), label="fired before the reopen")
    memory = AgendaMemory(cycle=cycle)
    for item in sorted(items, key=order)[:partly]:
        memory = memory.remember(item, cycle)
    assert memory.in_cycle(cycle) == memory  # the same cycle keeps what fired
    assert memory.in_cycle(cycle + 1).fired == []
    fired, after = run_loop(items, memory, cycle + 1)
    assert fired == sorted(items, key=order)
    assert sorted(after.in_cycle(cycle + 1).fired) == sorted(item.ident for item in items)


@FAST_SETTINGS
@given(items=agendas, cycle=cycles, data=st.data())
def test_due_items_are_exactly_the_unfired_ones_whose_instant_has_come(items, cycle, data):
    done = data.draw(st.lists(st.sampled_from(items), unique=True) if items else st.just([]), label="fired")
    memory = AgendaMemory(cycle=cycle)
    for item in done:
        memory = memory.remember(item, cycle)
    near = [item.at + offset for item in items for offset in (-DUE_TOLERANCE - MICRO, -DUE_TOLERANCE, timedelta(0))]
    now = data.draw(st.one_of(instants, st.sampled_from(near)) if near else instants, label="now")
    expected = sorted((item for item in items if item not in done and item.at <= now + DUE_TOLERANCE), key=order)
    assert due_items(items, memory, cycle, now) == expected
    assert due_items(items, memory, cycle + 1, now) == sorted(
        (item for item in items if item.at <= now + DUE_TOLERANCE), key=order)


@FAST_SETTINGS
@given(before=agendas, added=agendas, cycle=cycles, data=st.data())
def test_only_forgets_items_off_the_agenda_and_never_refires_one_still_on_it(before, added, cycle, data):
    memory = AgendaMemory(cycle=cycle)
    done = data.draw(st.lists(st.sampled_from(before), unique=True) if before else st.just([]), label="fired")
    for item in done:
        memory = memory.remember(item, cycle)
    kept = data.draw(st.lists(st.sampled_from(before), unique=True) if before else st.just([]), label="kept")
    kept_idents = {item.ident for item in kept}
    after = kept + [item for item in added if item.ident not in {i.ident for i in before}]
    pruned = memory.only(after)
    assert pruned.cycle == cycle
    assert pruned.fired == [ident for ident in memory.fired if ident in kept_idents]
    assert pruned.only(after) == pruned
    fired, _ = run_loop(after, pruned, cycle)
    assert not {item.ident for item in fired} & {item.ident for item in done}
    assert sorted(item.ident for item in fired) == sorted(i.ident for i in after if i not in done)


# -- sources --------------------------------------------------------------------------------------

SLA_SUMMARIES = {
    "first_response:at_risk": "first response 80 % → at risk",
    "first_response:breach": "first response 100 % → breached",
    "resolution:at_risk": "resolution 80 % → at risk",
    "resolution:breach": "resolution 100 % → breached",
}


def urgent_ledger(now: datetime) -> sla.SlaLedger:
    ledger, _ = sla.start(sla.default_policy(Priority.URGENT), TicketStatus.OPEN, now)
    return ledger


def by_key(items: list[DueItem]) -> dict[str, DueItem]:
    assert all(item.kind == "sla" for item in items)
    return {item.key.split("@")[0]: item for item in items}  # keys name their instant: "<metric>:<threshold>@<at>"


@FAST_SETTINGS
@given(now=instants)
def test_a_running_sla_gives_at_risk_and_breach_items_for_both_metrics(now):
    ledger = urgent_ledger(now)
    items = by_key(sla_items(AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=ledger)))
    assert {key: item.summary for key, item in items.items()} == SLA_SUMMARIES
    policy = ledger.policy
    for metric, at_risk_minutes, target_minutes in ((FR, 12, 15), (RES, 192, 240)):
        at_risk, breach = items[f"{metric.value}:at_risk"], items[f"{metric.value}:breach"]
        assert at_risk.at == sla.instant_at(ledger, metric, policy.at_risk_after(metric))
        assert breach.at == sla.instant_at(ledger, metric, policy.target(metric))
        assert (at_risk.at, breach.at) == (now + timedelta(minutes=at_risk_minutes),
                                           now + timedelta(minutes=target_minutes))


@FAST_SETTINGS
@given(now=instants, after_us=st.integers(0, 12 * 60_000_000 - 1))
def test_a_paused_sla_gives_no_items_so_no_timer(now, after_us):
    ledger, _ = sla.pause(urgent_ledger(now), now + after_us * MICRO, "waiting on vendor")
    facts = AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=ledger)
    assert sla_items(facts) == []
    assert next_item(agenda_of(facts), AgendaMemory(), 0) is None


@FAST_SETTINGS
@given(now=instants, past_us=st.integers(0, 3 * 60_000_000 - 1))
def test_once_first_response_is_at_risk_only_its_breach_item_remains(now, past_us):
    ledger = urgent_ledger(now)
    before = by_key(sla_items(AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=ledger)))
    ticked, _ = sla.tick(ledger, before["first_response:at_risk"].at + past_us * MICRO)
    assert ticked.first_response.state == sla.SlaState.AT_RISK
    after = by_key(sla_items(AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=ticked)))
    assert set(after) == set(SLA_SUMMARIES) - {"first_response:at_risk"}
    assert all(after[key] == before[key] for key in after)


@FAST_SETTINGS
@given(created_at=instants, status=st.sampled_from(list(TicketStatus)))
def test_an_agenda_probe_is_due_30_minutes_after_creation_while_the_ticket_is_not_done(created_at, status):
    rules = TicketRules(probes=[AgendaProbe(id=1, after_minutes=30)])
    items = probe_items(AgendaFacts(status=status, created_at=created_at, rules=rules))
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        assert items == []
    else:
        assert [(item.kind, item.key, item.at) for item in items] == [
            ("probe", "1", created_at + timedelta(minutes=30))]


@FAST_SETTINGS
@given(now=instants)
def test_a_clock_retargeted_back_to_on_time_arms_its_new_thresholds(now):
    """At risk and remembered as fired; a priority change gives a longer target: the new at-risk
    instant is a new item and fires, though the old one fired in this cycle."""
    ledger = urgent_ledger(now)
    old = by_key(sla_items(AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=ledger)))
    at_risk = old["first_response:at_risk"]
    ticked, _ = sla.tick(ledger, at_risk.at)
    memory = AgendaMemory().remember(at_risk, 0)
    retargeted, _ = sla.retarget(ticked, sla.default_policy(Priority.LOW), TicketStatus.OPEN, at_risk.at)
    items = sla_items(AgendaFacts(status=TicketStatus.OPEN, created_at=now, ledger=retargeted))
    first = next_item(items, memory.only(items), 0)
    assert first is not None and first.key.startswith("first_response:at_risk@")
    assert first.at == sla.instant_at(retargeted, FR, retargeted.policy.at_risk_after(FR)) > at_risk.at
