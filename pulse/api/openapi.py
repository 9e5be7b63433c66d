"""The OpenAPI document as clients (and schemathesis) read it: exact integer bounds."""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI

from pulse.domain.ids import MAX_ID

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node: Any) -> None:
    """FastAPI's schema model holds bounds as floats: ``le=2**63 - 1`` would be published as
    9.223372036854776e18, i.e. 2**63, a number no id column can hold. Integral bounds go back to
    integers, and the float of the largest id back to the id."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = MAX_ID if value == float(MAX_ID) else int(value)
            else:
                _exact_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _exact_bounds(item)


def install_openapi(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _exact_bounds(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
