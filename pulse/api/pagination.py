from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from pulse.domain.ids import MAX_INT
from pulse.domain.ticket_query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


class Page(BaseModel):
    page: int
    page_size: int


async def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_INT)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page:
    return Page(page=page, page_size=page_size)


def pagination(page: int, page_size: int, total: int) -> dict[str, int]:
    return {"page": page, "pageSize": page_size, "total": total, "totalPages": math.ceil(total / page_size) if total else 0}


def paginated(items: list[dict[str, Any]], page: Page, total: int, *, key: str = "data") -> dict[str, Any]:
    return {key: items, "pagination": pagination(page.page, page.page_size, total)}
