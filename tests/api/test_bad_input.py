"""Bad input gets a 4xx in the contract's format, never a 5xx: the cases fuzzing found."""

from __future__ import annotations

import pytest

from tests.conftest import AccountContext

HUGE = 2**63  # one past PostgreSQL's bigint
CASES = [
    ("GET", f"/api/tickets/{HUGE}", None),
    ("PATCH", f"/api/tickets/{HUGE}", {"subject": "x"}),
    ("GET", "/api/tickets/¹", None),
    ("GET", "/api/tickets/PULSE-99999999999", None),
    ("GET", "/api/tickets/PULSE-¹", None),
    ("GET", "/api/tickets?search=PULSE-99999999999", None),
    ("GET", f"/api/tickets?assignedToUserId={HUGE}", None),
    ("GET", "/api/tickets?createdAfter=9999-12-31", None),
    ("GET", "/api/tickets?createdAfter=0001-01-01", None),
    ("GET", "/api/tickets?createdBefore=0001-01-05", None),
    ("GET", f"/api/users/{HUGE}", None),
    ("GET", "/api/users/¹", None),
    ("POST", "/api/tickets", {"subject": "x", "typeId": HUGE}),
    ("POST", "/api/tickets", {"subject": "x", "assignedToUserId": -HUGE}),
    ("POST", "/api/tickets", "a lone surrogate as a custom field's key"),
    ("POST", "/api/ticket-types", {"name": "big order", "order": 2**40}),
    ("POST", "/api/ticket-categories", {"name": "big order", "order": 2**40}),
    ("POST", "/api/tickets/merge", {"primaryTicketId": HUGE, "ticketIdsToMerge": [HUGE + 1]}),
    ("GET", "/api/sla/compliance?from=9999-12-31&to=9999-12-31", None),
    ("GET", "/api/sla/compliance?from=0001-01-01&to=0001-01-05", None),
    ("POST", "/api/sla/calendars", {"name": "edge", "timezone": "UTC", "weeklyHours": {"mon": [["09:00", "17:00"]]},
                                    "holidays": ["9999-12-31", "0001-01-01"]}),
    ("GET", f"/api/notifications?page={HUGE}", None),
    ("GET", "/api/tickets?page=99999999999", None),
    ("GET", f"/api/tickets/automation-rules/{HUGE}", None),
    ("GET", f"/api/tickets/escalation-rules/{HUGE}", None),
    ("GET", f"/api/rotations/{HUGE}/next", None),
    ("GET", f"/api/tokens/{HUGE}", None),
    ("GET", "/api/tickets/bulk/29958942376622871805952", None),
    ("GET", "/api/views/182726357280996627979436032", None),
    ("GET", "/api/sla/calendars/8212806096308098005776826630144", None),
    ("DELETE", "/api/sla/calendars/8212806096308098005776826630144", None),
    ("PUT", "/api/views/1416846444504079764015330361344", {"name": "x", "sort": None, "shared": True}),
    ("GET", "/api/views/182726357280996627979436032/tickets", None),
    ("POST", "/api/sla/policies", {"name": "big order", "order": 30997323215, "firstResponseMinutes": 60,
                                   "resolutionMinutes": 120, "conditions": {"priorities": ["low"]}}),
    ("DELETE", "/api/sla/policies/999999999999999999999999999999", None),
    ("GET", f"/api/sla/policies/{HUGE}", None),
    ("PUT", f"/api/sla/policies/{HUGE}", {"resolutionMinutes": 60}),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES, ids=[f"{m} {p} {b}"[:80] for m, p, b in CASES])
async def test_bad_input_is_a_4xx_in_the_contract_format(account: AccountContext, method: str, path: str,
                                                         body: object) -> None:
    kwargs: dict = {"json": body} if body is not None else {}
    if isinstance(body, str):  # JSON may escape a lone surrogate; Python's encoder would refuse it
        kwargs = {"content": '{"subject": "x", "customFields": {"\\ud800": 1}}',
                  "headers": {"Content-Type": "application/json"}}
    response = await account.request(method, path, **kwargs)
    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "message", "details"}, response.text


async def test_invalid_json_is_a_422_and_authentication_comes_before_the_body(account: AccountContext) -> None:
    broken = await account.request("POST", "/api/tickets", content=b'{"subject": "x",',
                                   headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"] == "validation_error", broken.text
    not_text = await account.request("PATCH", "/api/tickets/1", content=b"\xff\xfe*y\x1ci\x18",
                                     headers={"Content-Type": "application/json"})
    assert not_text.status_code == 422 and not_text.json()["error"] == "validation_error", not_text.text
    anonymous = await account.http.post("/api/tickets", content=b'{"subject": ', headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 401, anonymous.text


async def test_an_undeclared_method_is_a_405_naming_every_method_the_path_serves(account: AccountContext) -> None:
    rotation = await account.request("TRACE", "/api/rotations/1")
    assert rotation.status_code == 405 and rotation.json()["error"] == "method_not_allowed", rotation.text
    assert rotation.headers["Allow"] == "DELETE, GET, PATCH"
    bulk = await account.request("OPTIONS", "/api/tickets/bulk")  # not /api/tickets/{ticket_ref}'s methods
    assert bulk.status_code == 405 and bulk.headers["Allow"] == "POST"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/tokens", {"name": "t", "permissions": ["readSupport"], "userId": True}, "userId"),
    ("/api/ticket-types", {"name": "t", "autoAssignmentEnabled": 0}, "autoAssignmentEnabled"),
    ("/api/tickets/bulk", {"operation": "delete", "ticketIds": [False]}, "ticketIds"),
    ("/api/users", {"name": "u", "isActive": "yes"}, "isActive"),
    ("/api/tickets", {"subject": "x", "assignedToUserId": "7"}, "assignedToUserId"),
])
async def test_a_value_of_another_json_type_is_refused_not_coerced(account: AccountContext, path: str,
                                                                    body: dict, field: str) -> None:
    response = await account.post(path, json=body)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["details"]] == [field]


async def test_the_openapi_document_states_what_the_api_checks(account: AccountContext) -> None:
    document = (await account.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    user_id = schemas["TokenBody"]["properties"]["userId"]["anyOf"][0]
    assert user_id["maximum"] == 2**63 - 1 and isinstance(user_id["maximum"], int)  # not 2**63 as a float
    # May be left out of a PATCH, but not set to null.
    assert schemas["TicketUpdateBody"]["properties"]["priority"] == {"$ref": "#/components/schemas/Priority"}
    assert schemas["UserPatch"]["properties"]["isActive"]["type"] == "boolean"
    assert "Europe/Berlin" in schemas["CalendarBody"]["properties"]["timezone"]["enum"]
    if_match = next(parameter for parameter in document["paths"]["/api/views/{view_id}"]["put"]["parameters"]
                    if parameter["name"] == "If-Match")
    assert if_match["in"] == "header" and "pattern" in if_match["schema"]["anyOf"][0]
    stream = document["paths"]["/api/notifications/stream"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]


def unbounded_parts(schemas: dict, node: object, path: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The strings, lists and maps under ``node`` (a request body's schema) with no size limit."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else unbounded_parts(schemas, schemas[name], path, seen | {name})
    found = [part for key in ("anyOf", "oneOf", "allOf") for option in node.get(key, [])
             for part in unbounded_parts(schemas, option, path, seen)]
    kind = node.get("type")
    if kind == "string" and not {"maxLength", "enum", "format", "pattern"} & set(node) and "enum" not in node:
        found.append(path)
    if kind == "array":
        if "maxItems" not in node and "prefixItems" not in node:
            found.append(f"{path}[]")
        found += unbounded_parts(schemas, node.get("items"), f"{path}[]", seen)
    for name, value in node.get("properties", {}).items():
        found += unbounded_parts(schemas, value, f"{path}.{name}", seen)
    if isinstance(node.get("additionalProperties"), dict):
        if "maxProperties" not in node:
            found.append(f"{path}{{}}")
        found += unbounded_parts(schemas, node["additionalProperties"], f"{path}{{}}", seen)
    return found


async def test_every_string_and_list_a_request_body_may_hold_has_a_limit(account: AccountContext) -> None:
    """Bounded inputs (422 naming the field) beyond the body limit: a new field cannot ship without one.
    An uploaded file is bounded by the upload limit instead."""
    document = (await account.get("/openapi.json")).json()
    unbounded = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if media == "application/json":
                    unbounded += [f"{method.upper()} {path} {part}"
                                  for part in unbounded_parts(document["components"]["schemas"], content["schema"], "body")]
    assert unbounded == [], "\n".join(unbounded)


async def test_a_body_that_cannot_be_parsed_at_all_is_a_422(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    no_boundary = await account.post(f"/api/tickets/{ticket['id']}/attachments", content=b"--x\r\n",
                                     headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 422 and no_boundary.json()["error"] == "validation_error", no_boundary.text
