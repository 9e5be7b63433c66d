"""Seed data: Maverick's five categories and tickets a merchant-services desk would see."""

from __future__ import annotations

import random

from pulse.integrations.maverick.simulator.state import SimState
from pulse.integrations.maverick.wire import Category, MaverickTicket

CATEGORIES = {1: "Chargebacks", 2: "Account Changes", 3: "Statements", 4: "Equipment", 5: "Boarding"}
_SUBJECTS = {
    1: ["Chargeback dispute for order {n}", "Evidence needed for chargeback {n}"],
    2: ["Change of bank account for deposits", "Update business address", "Add a new location"],
    3: ["Missing statement for last month", "Fee on statement {n} looks wrong"],
    4: ["Terminal {n} does not print receipts", "Card reader offline since this morning"],
    5: ["Boarding application {n} stuck in review", "Documents for boarding application {n}"],
}
_MERCHANTS = ["Corner Bakery", "Blue Fin Sushi", "Hardware Hank", "Luna Florist", "Peak Fitness", "City Books"]
_STATUSES = ["new", "new", "assigned", "in_review", "pending_merchant", "resolved"]
_PRIORITIES = ["normal", "normal", "high", "low", "critical"]


def seed_categories(state: SimState) -> None:
    for category_id, name in CATEGORIES.items():
        state.categories[category_id] = Category(id=category_id, name=name)


def seed_tickets(state: SimState, count: int, *, seed: int | None = None) -> list[MaverickTicket]:
    rng = random.Random(seed)
    created = []
    for _ in range(count):
        category_id = rng.choice(list(CATEGORIES))
        merchant = rng.choice(_MERCHANTS)
        subject = rng.choice(_SUBJECTS[category_id]).format(n=rng.randint(1000, 99999))
        created.append(state.create_ticket(
            subject=subject, body=f"{merchant} wrote in about: {subject.lower()}.", category_id=category_id,
            status=rng.choice(_STATUSES), priority=rng.choice(_PRIORITIES), merchant_name=merchant,
            contact_email=f"owner@{merchant.lower().replace(' ', '')}.example", contact_phone="+15550100"))
    return created
