"""Ticket attachments (spec §2.3): upload, list, download; stored by content hash; the ticket's
attachmentCount, version and timeline follow (the write goes through the ticket's workflow)."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from pulse.db import SessionFactory
from tests.conftest import AccountContext

PDF = b"%PDF-1.4 chargeback evidence\n" * 200


async def upload(tenant: AccountContext, ticket_id: int, content: bytes, name: str = "evidence.pdf",
                 content_type: str = "application/pdf", **kwargs: object):
    return await tenant.post(f"/api/tickets/{ticket_id}/attachments", files={"file": (name, content, content_type)},
                             **kwargs)


async def test_an_uploaded_file_is_listed_downloaded_byte_for_byte_and_counted_on_its_ticket(
        tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket(subject="Chargeback on order 1001")
    response = await upload(tenant, ticket["id"], PDF)
    assert response.status_code == 201, response.text
    attachment = response.json()
    assert set(attachment) == {"id", "ticketId", "fileName", "contentType", "size", "sha256", "source", "createdAt",
                               "mergedFromTicketId"}
    assert attachment["mergedFromTicketId"] is None
    assert (attachment["ticketId"], attachment["fileName"], attachment["contentType"], attachment["size"],
            attachment["sha256"], attachment["source"]) == \
        (ticket["id"], "evidence.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest(), "pulse")

    after = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()
    assert (after["attachmentCount"], after["version"]) == (1, ticket["version"] + 1)
    listed = (await tenant.get(f"/api/tickets/{ticket['ticketNumber']}/attachments")).json()
    assert [a["id"] for a in listed["data"]] == [attachment["id"]] and listed["pagination"]["total"] == 1
    download = await tenant.get(f"/api/tickets/{ticket['id']}/attachments/{attachment['id']}/content",
                                token=tenant.tokens["read"])
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''evidence.pdf"
    timeline = (await tenant.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    added = [entry for entry in timeline if entry.get("eventType", entry.get("type")) == "attachment_added"]
    assert len(added) == 1, timeline


async def test_the_same_bytes_twice_are_two_attachments_and_one_stored_content(
        tenant: AccountContext, sessions: SessionFactory) -> None:
    ticket = await tenant.create_ticket()
    first = (await upload(tenant, ticket["id"], PDF, "a.pdf")).json()
    second = (await upload(tenant, ticket["id"], PDF, "b.pdf")).json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    async with sessions() as session:
        stored = await session.scalar(text("SELECT count(*) FROM attachment_contents WHERE account_id = :a"),
                                      {"a": tenant.account_id})
    assert stored == 1
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 2


async def test_an_upload_repeated_with_its_idempotency_key_adds_one_attachment(tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    first = await upload(tenant, ticket["id"], PDF, headers={"Idempotency-Key": "upload-1"})
    again = await upload(tenant, ticket["id"], PDF, headers={"Idempotency-Key": "upload-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 1


async def test_a_file_over_the_size_limit_is_a_413_and_nothing_is_stored(tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    response = await upload(tenant, ticket["id"], b"x" * (64 * 1024 + 1))
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    assert (await upload(tenant, ticket["id"], b"x" * (64 * 1024))).status_code == 201
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 1


async def test_who_may_upload_read_or_see_attachments(tenant: AccountContext, other_tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    attachment = (await upload(tenant, ticket["id"], PDF)).json()
    assert (await upload(tenant, ticket["id"], PDF, token=tenant.tokens["read"])).status_code == 403
    assert (await tenant.get(f"/api/tickets/{ticket['id']}/attachments", token=tenant.tokens["read"])).status_code == 200
    content = f"/api/tickets/{ticket['id']}/attachments/{attachment['id']}/content"
    assert (await other_tenant.get(content)).status_code == 404
    assert (await other_tenant.get(f"/api/tickets/{ticket['id']}/attachments")).status_code == 404
    assert (await upload(other_tenant, ticket["id"], PDF)).status_code == 404
    assert (await tenant.get(f"/api/tickets/{ticket['id']}/attachments/999999999/content")).status_code == 404


async def test_bad_uploads_are_4xx_never_500(tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    no_file = await tenant.post(f"/api/tickets/{ticket['id']}/attachments", data={"other": "x"})
    assert no_file.status_code == 422
    not_multipart = await tenant.post(f"/api/tickets/{ticket['id']}/attachments", json={"file": "x"})
    assert not_multipart.status_code == 422
    odd_name = await upload(tenant, ticket["id"], b"hello", name="..\\..\\etc/passwd", content_type="bogus")
    assert odd_name.status_code == 201, odd_name.text
    assert (odd_name.json()["fileName"], odd_name.json()["contentType"]) == ("passwd", "application/octet-stream")


async def test_a_closed_ticket_takes_no_attachments(tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    closed = await tenant.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})
    assert closed.status_code == 200, closed.text
    response = await upload(tenant, ticket["id"], PDF)
    assert response.status_code == 409 and response.json()["error"] == "ticket_closed"
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 0


async def test_a_deleted_attachment_is_no_longer_listed_or_served_and_the_ticket_counts_it_out(
        tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket(subject="Wrong file sent")
    kept = (await upload(tenant, ticket["id"], PDF, "evidence.pdf")).json()
    wrong = (await upload(tenant, ticket["id"], b"card 4111 1111 1111 1111", "card.txt", "text/plain")).json()
    before = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()

    response = await tenant.request("DELETE", f"/api/tickets/{ticket['ticketNumber']}/attachments/{wrong['id']}")

    assert response.status_code == 200, response.text
    assert response.json()["id"] == wrong["id"] and response.json()["fileName"] == "card.txt"
    listed = (await tenant.get(f"/api/tickets/{ticket['id']}/attachments")).json()
    assert [a["id"] for a in listed["data"]] == [kept["id"]] and listed["pagination"]["total"] == 1
    gone = await tenant.get(f"/api/tickets/{ticket['id']}/attachments/{wrong['id']}/content")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    after = (await tenant.get(f"/api/tickets/{ticket['id']}")).json()
    assert (after["attachmentCount"], after["version"]) == (1, before["version"] + 1)
    timeline = (await tenant.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    deleted = [e for e in timeline if e["eventType"] == "attachment_deleted"]
    assert len(deleted) == 1 and deleted[0]["data"]["attachmentId"] == wrong["id"], timeline
    assert deleted[0]["actor"] == "user"
    again = await tenant.request("DELETE", f"/api/tickets/{ticket['id']}/attachments/{wrong['id']}")
    assert again.status_code == 404
    assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["attachmentCount"] == 1


async def test_who_may_delete_an_attachment_and_what_cannot_be_deleted(tenant: AccountContext,
                                                                       other_tenant: AccountContext) -> None:
    ticket = await tenant.create_ticket()
    other = await tenant.create_ticket()
    attachment = (await upload(tenant, ticket["id"], PDF)).json()
    path = f"/api/tickets/{ticket['id']}/attachments/{attachment['id']}"
    assert (await tenant.request("DELETE", path, token=tenant.tokens["read"])).status_code == 403
    assert (await other_tenant.request("DELETE", path)).status_code == 404
    assert (await tenant.request("DELETE", f"/api/tickets/{other['id']}/attachments/{attachment['id']}")).status_code == 404
    for bad_id in ("999999999", str(2**63), str(2**64 + 5), "0", "-1"):
        response = await tenant.request("DELETE", f"/api/tickets/{ticket['id']}/attachments/{bad_id}")
        assert response.status_code in (404, 422), (bad_id, response.status_code, response.text)
        assert response.status_code == 404 or bad_id == "-1", (bad_id, response.text)
    assert (await tenant.patch(f"/api/tickets/{ticket['id']}", json={"status": "closed"})).status_code == 200
    closed = await tenant.request("DELETE", path)
    assert closed.status_code == 409 and closed.json()["error"] == "ticket_closed"
    assert (await tenant.get(f"{path}/content")).status_code == 200
