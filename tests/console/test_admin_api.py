"""The admin API behind the console's ops panel, and the upload offset endpoint, on every backend."""
from __future__ import annotations

from gateway.core.jobs import JobQueue
from gateway.keys import JOBS
from tests.chunking import send_chunk


async def failed_job(queue: JobQueue, subject: int) -> dict:
    """A job that used up its attempts (a kind no worker runs, so nothing else touches it)."""
    await queue.enqueue("test-kind", subject, {"n": subject})
    claimed = await queue.claim(["test-kind"])
    return await queue.fail(claimed, "decoder exploded", permanent=True)


async def test_admin_endpoints_are_for_staff_and_admins_only(stack):
    client = await stack.client(workers=0)
    member = await stack.user(client)
    for method, path in [("GET", "/api/admin/uploads"), ("GET", "/api/admin/jobs"), ("GET", "/api/admin/queue"),
                         ("POST", "/api/admin/jobs/x/retry")]:
        anonymous = await client.request(method, path)
        assert anonymous.status == 401 and (await anonymous.json())["code"] == "not_authenticated"
        refused = await client.request(method, path, headers=member["auth"])
        assert refused.status == 403 and (await refused.json())["code"] == "permission_denied", path


async def test_jobs_list_by_state_with_paging_and_retry_of_a_failed_job(stack):
    client = await stack.client(workers=0)
    staff = await stack.user(client, staff=True)
    queue = client.app[JOBS]
    for subject in (1, 2, 3):
        await failed_job(queue, subject)
    await queue.enqueue("test-kind", 4)

    listed = await client.get("/api/admin/jobs", params={"state": "failed", "limit": "2"}, headers=staff["auth"])
    page = await listed.json()
    assert listed.status == 200 and page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert {j["status"] for j in page["results"]} == {"failed"}
    assert page["results"][0]["error"] == "decoder exploded"
    rest = await (await client.get("/api/admin/jobs", params={"state": "failed", "limit": "2", "offset": "2"},
                                   headers=staff["auth"])).json()
    assert len(rest["results"]) == 1 and rest["previous"]
    everything = await (await client.get("/api/admin/jobs", headers=staff["auth"])).json()
    assert everything["count"] == 4
    bad = await client.get("/api/admin/jobs", params={"state": "stuck"}, headers=staff["auth"])
    assert bad.status == 400 and "state" in await bad.json()

    depth = await (await client.get("/api/admin/queue", headers=staff["auth"])).json()
    assert depth == {"queued": 1, "running": 0, "done": 0, "failed": 3}

    retried = await client.post("/api/admin/jobs/test-kind:2/retry", headers=staff["auth"])
    body = await retried.json()
    assert retried.status == 200 and body["status"] == "queued" and body["attempts"] == 0 and body["error"] is None
    assert (await queue.get("test-kind:2"))["status"] == "queued"
    again = await client.post("/api/admin/jobs/test-kind:2/retry", headers=staff["auth"])
    assert again.status == 409 and (await again.json())["job_status"] == "queued"
    missing = await client.post("/api/admin/jobs/no-such-job/retry", headers=staff["auth"])
    assert missing.status == 404
    depth = await (await client.get("/api/admin/queue", headers=staff["auth"])).json()
    assert depth["queued"] == 2 and depth["failed"] == 2


async def test_uploads_in_progress_and_the_offset_of_an_upload(stack):
    client = await stack.client(workers=0)
    admin = await stack.user(client, admin=True)
    alice, bob = await stack.user(client, "alice"), await stack.user(client, "bob")
    first = await (await send_chunk(client, alice["auth"], b"a" * 1000, 0, 5000, filename="holiday.jpg")).json()
    await send_chunk(client, bob["auth"], b"b" * 10, 0, 20, filename="notes.txt")

    listed = await (await client.get("/api/admin/uploads", headers=admin["auth"])).json()
    assert listed["count"] == 2
    mine = await (await client.get("/api/admin/uploads", params={"user": "alice"}, headers=admin["auth"])).json()
    assert mine["count"] == 1
    row = mine["results"][0]
    assert row["id"] == first["upload_id"] and row["user"] == "alice" and row["filename"] == "holiday.jpg"
    assert row["offset"] == 1000 and row["total"] == 5000 and row["expires"]
    nobody = await (await client.get("/api/admin/uploads", params={"user": "carol"}, headers=admin["auth"])).json()
    assert nobody["count"] == 0

    state = await client.get("/api/v2/media/upload/chunk/", params={"upload_id": first["upload_id"]},
                             headers=alice["auth"])
    assert state.status == 200
    assert await state.json() == {"upload_id": first["upload_id"], "offset": 1000, "total": 5000,
                                  "expires": first["expires"], "status": "uploading"}
    others = await client.get("/api/v2/media/upload/chunk/", params={"upload_id": first["upload_id"]},
                              headers=bob["auth"])
    assert others.status == 404  # another user's upload is indistinguishable from none
    assert (await client.get("/api/v2/media/upload/chunk/", headers=alice["auth"])).status == 400
    assert (await client.get("/api/v2/media/upload/chunk/", params={"upload_id": "x"})).status == 401
