"""The DatoCMS uploads API over HTTP, as the official client speaks it (tests/dato/dato_http.py).

Every reply is checked for an ``application/json`` content type by the caller.
"""
from __future__ import annotations

import pytest

from gateway.keys import DOCUMENTS, JOB_RESULTS, USERS
from tests.dato.dato_http import Dato, md5, resource
from tests.media_files import jpeg, pdf_like, png

pytestmark = pytest.mark.usefixtures("quiet_log")
TWO_STACKS = pytest.mark.parametrize("stack", ["local+sqlite", "s3+mongodb"], indirect=True)


async def dato_user(stack, client=None, **roles):
    client = client or await stack.client()
    user = await stack.user(client, **roles)
    return Dato(client, user["auth"]), user


async def test_create_from_a_file_with_metadata(stack):
    dato, user = await dato_user(stack)
    data = png(64, 48, "RGBA")
    upload = await dato.create(data, "sunset.png", author="Ada", copyright="CC-BY", notes="first", tags=["sky", "red"],
                               default_field_metadata={"en": {"alt": "A sunset", "title": "Sunset"},
                                                       "it": {"alt": "Un tramonto"}})
    attributes = upload["attributes"]
    assert attributes["md5"] == md5(data) and attributes["size"] == len(data)
    assert (attributes["width"], attributes["height"], attributes["is_image"]) == (64, 48, True)
    assert attributes["filename"] == "sunset.png" and attributes["basename"] == "sunset"
    assert attributes["path"].endswith("sunset.png") and attributes["path"].startswith(f"/{user['id']}/")
    assert attributes["format"] == "png" and attributes["mime_type"] == "image/png"
    assert (attributes["author"], attributes["copyright"], attributes["notes"]) == ("Ada", "CC-BY", "first")
    assert attributes["tags"] == ["sky", "red"]
    assert attributes["default_field_metadata"] == {
        "en": {"alt": "A sunset", "title": "Sunset", "custom_data": {}, "focal_point": None},
        "it": {"alt": "Un tramonto", "title": None, "custom_data": {}, "focal_point": None}}
    assert attributes["blurhash"] and attributes["thumbhash"] and attributes["colors"]
    assert upload["relationships"]["creator"]["data"]["id"] == str(user["id"])
    served, content_type = await dato.served(attributes["url"])
    assert served == data and content_type == "image/png"
    _, again = await dato.call("GET", f"/uploads/{upload['id']}", expect=200)
    assert again["data"]["attributes"]["md5"] == md5(data)


@TWO_STACKS
async def test_a_pdf_is_a_file_without_image_attributes(stack):
    dato, _ = await dato_user(stack)
    data = pdf_like()
    attributes = (await dato.create(data, "report.pdf", "application/pdf"))["attributes"]
    assert attributes["is_image"] is False and attributes["width"] is None and attributes["blurhash"] is None
    assert attributes["format"] == "pdf" and attributes["md5"] == md5(data)
    served, content_type = await dato.served(attributes["url"])
    assert served == data and content_type == "application/pdf"


@TWO_STACKS
async def test_list_filters_ordering_and_paging(stack):
    dato, _ = await dato_user(stack)
    other, _ = await dato_user(stack, dato.client)
    small = await dato.create(png(8, 8), "small.png", tags=["a"], notes="Harbour at dawn")
    large = await dato.create(jpeg(200, 100), "large.jpg", "image/jpeg")
    document = await dato.create(pdf_like(), "doc.pdf", "application/pdf")
    await other.create(png(9, 9), "not-mine.png")
    ids = [small["id"], large["id"], document["id"]]

    async def listed(**params) -> tuple[list[str], int]:
        _, body = await dato.call("GET", "/uploads", expect=200, **params)
        return [item["id"] for item in body["data"]], body["meta"]["total_count"]

    assert await listed() == (ids[::-1], 3)  # newest first; another user's upload is not listed
    assert await listed(**{"filter[ids]": f"{ids[0]},{ids[2]}"}) == ([ids[2], ids[0]], 2)
    assert sorted((await listed(**{"filter[fields][type][eq]": "image"}))[0]) == sorted(ids[:2])
    assert (await listed(**{"filter[fields][type][neq]": "image"}))[0] == [ids[2]]
    md5_of_large = large["attributes"]["md5"]
    assert (await listed(**{"filter[fields][md5][eq]": md5_of_large}))[0] == [ids[1]]
    assert (await listed(**{"filter[query]": "harbour"}))[0] == [ids[0]]
    assert (await listed(**{"filter[fields][tags][contains]": "a"}))[0] == [ids[0]]
    sizes = sorted((item["attributes"]["size"], item["id"]) for item in (small, large, document))
    assert (await listed(order_by="size_ASC"))[0] == [upload_id for _, upload_id in sizes]
    assert (await listed(order_by="_created_at_ASC", **{"page[limit]": "2", "page[offset]": "1"})) == (ids[1:], 3)


async def test_metadata_patch_rename_and_validation(stack):
    dato, _ = await dato_user(stack)
    upload = await dato.create(png(), "cat.png", default_field_metadata={"en": {"alt": "cat", "title": "Cat"},
                                                                          "it": {"alt": "gatto"}})
    path = f"/uploads/{upload['id']}"
    _, changed = await dato.call("PUT", path, resource("upload", default_field_metadata={
        "en": {"focal_point": {"x": 0.25, "y": 1}}}), expect=200)
    metadata = changed["data"]["attributes"]["default_field_metadata"]
    assert metadata["en"] == {"alt": "cat", "title": "Cat", "custom_data": {}, "focal_point": {"x": 0.25, "y": 1.0}}
    assert metadata["it"]["alt"] == "gatto"

    status, error = await dato.call("PUT", path, resource("upload", default_field_metadata={
        "en": {"focal_point": {"x": 1.5, "y": 0.5}}}))
    assert status == 422 and error["data"][0]["attributes"]["code"] == "INVALID_FIELD"
    assert "focal_point" in error["data"][0]["attributes"]["details"]["field"]

    _, renamed = await dato.call("PUT", path, resource("upload", basename="kitten"), expect=200)
    attributes = renamed["data"]["attributes"]
    assert attributes["filename"] == "kitten.png" and attributes["path"].endswith("-kitten.png")
    assert attributes["url"] != upload["attributes"]["url"] and attributes["url"].endswith("/kitten.png")
    assert attributes["default_field_metadata"]["en"]["focal_point"] == {"x": 0.25, "y": 1.0}  # the 422 changed nothing
    assert (await dato.served(attributes["url"]))[0] == png()


@pytest.mark.parametrize("strategy", ["create_new_url", "keep_url"])
@TWO_STACKS
async def test_a_new_file_keeps_metadata(stack, strategy):
    dato, _ = await dato_user(stack)
    first = await dato.create(png(10, 10), "v1.png", author="Ada", tags=["kept"])
    second = jpeg(120, 90)
    path = await dato.put_bytes(second, "v2.jpg", "image/jpeg")
    reply = await dato.call("PUT", f"/uploads/{first['id']}?replace_strategy={strategy}",
                            resource("upload", path=path))
    status, payload = await dato.finished(reply)
    assert status == 200
    attributes = payload["data"]["attributes"]
    assert (attributes["md5"], attributes["width"], attributes["height"]) == (md5(second), 120, 90)
    assert attributes["author"] == "Ada" and attributes["tags"] == ["kept"] and attributes["mime_type"] == "image/jpeg"
    if strategy == "keep_url":
        assert attributes["url"] == first["attributes"]["url"] and attributes["path"] == first["attributes"]["path"]
    else:
        assert attributes["url"] != first["attributes"]["url"] and attributes["path"] == path
        async with dato.client.session.get(first["attributes"]["url"]) as old:
            assert old.status == 404
    assert (await dato.served(attributes["url"]))[0] == second


async def test_destroy_answers_with_the_upload_and_removes_it(stack):
    dato, _ = await dato_user(stack)
    upload = await dato.create(png(), "gone.png")
    _, deleted = await dato.call("DELETE", f"/uploads/{upload['id']}", expect=200)
    assert deleted["data"]["id"] == upload["id"] and deleted["data"]["attributes"]["filename"] == "gone.png"
    await dato.call("GET", f"/uploads/{upload['id']}", expect=404)
    async with dato.client.session.get(upload["attributes"]["url"]) as served:
        assert served.status == 404


@TWO_STACKS
async def test_bulk_tag_bulk_destroy_and_upload_tags(stack):
    dato, _ = await dato_user(stack)
    one, two = await dato.create(png(), "one.png"), await dato.create(png(5, 5), "two.png")
    uploads = {"uploads": {"data": [{"type": "upload", "id": one["id"]}, {"type": "upload", "id": two["id"]}]}}
    reply = await dato.call("POST", "/uploads/bulk/tag", {"data": {
        "type": "upload_bulk_tag_operation", "attributes": {"tags": ["holiday"]}, "relationships": uploads}})
    assert (await dato.finished(reply))[0] == 200
    _, tagged = await dato.call("GET", "/uploads", expect=200, **{"filter[fields][tags][contains]": "holiday"})
    assert tagged["meta"]["total_count"] == 2

    await dato.call("POST", "/upload-tags", resource("upload_tag", name="archive"), expect=201)
    _, tags = await dato.call("GET", "/upload-tags", expect=200)
    assert [tag["id"] for tag in tags["data"]] == ["archive", "holiday"] and tags["meta"]["total_count"] == 2

    reply = await dato.call("POST", "/uploads/bulk/destroy", {"data": {
        "type": "upload_bulk_destroy_operation", "relationships": uploads}})
    assert (await dato.finished(reply))[0] == 200
    _, left = await dato.call("GET", "/uploads", expect=200)
    assert left["meta"]["total_count"] == 0


@pytest.mark.parametrize("stack", ["local+sqlite"], indirect=True)
async def test_errors_are_json_api_and_change_nothing(stack):
    dato, _ = await dato_user(stack)
    stranger, _ = await dato_user(stack, dato.client)
    upload = await dato.create(png(), "mine.png")
    path = f"/uploads/{upload['id']}"

    def code(body) -> str:
        return body["data"][0]["attributes"]["code"]

    anonymous = Dato(dato.client, {"Authorization": "Bearer nope"})
    status, body = await anonymous.call("GET", "/uploads")
    assert (status, code(body)) == (401, "INVALID_AUTHORIZATION_HEADER")
    for method, where in (("GET", path), ("PUT", path), ("DELETE", path), ("GET", path + "/references")):
        status, body = await stranger.call(method, where, resource("upload", author="x"))
        assert (status, code(body)) == (404, "NOT_FOUND"), (method, where)
    for where in ("/uploads/99999", "/uploads/abc", "/job-results/nope", "/no-such-route"):
        status, body = await dato.call("GET", where)
        assert (status, code(body)) == (404, "NOT_FOUND"), where
    reply = await dato.call("PUT", path, resource("upload", path=await dato.put_bytes(png(3, 3), "x.png")))
    status, body = await stranger.call("GET", f"/job-results/{reply[1]['data']['id']}")
    assert (status, code(body)) == (404, "NOT_FOUND")  # another user's job
    await dato.finished(reply)

    invalid = [("PUT", path, resource("upload", author=5)), ("PUT", path, resource("upload", tags="x")),
               ("PUT", path, resource("upload", size=5, colour="red")),
               ("PUT", path, {"data": {"type": "item", "attributes": {}}}),
               ("POST", "/uploads", resource("upload", author="no path")),
               ("POST", "/uploads", resource("upload", path="/1/unknown-file.png")),
               ("PUT", path, resource("upload", default_field_metadata={"en": {"focal_point": {"x": "a", "y": 0}}}))]
    for method, where, document in invalid:
        status, body = await dato.call(method, where, document)
        assert (status, code(body)) == (422, "INVALID_FIELD"), (method, where, document, body)
    empty_path = await dato.put_bytes(b"", "empty.png")
    status, body = await dato.call("POST", "/uploads", resource("upload", path=empty_path))
    assert (status, code(body)) == (422, "INVALID_FIELD") and "empty" in body["data"][0]["attributes"]["details"]["message"]
    foreign_path = await stranger.put_bytes(png(4, 4), "theirs.png")
    status, body = await dato.call("POST", "/uploads", resource("upload", path=foreign_path))
    assert (status, code(body)) == (422, "INVALID_FIELD")
    for params in ({"filter[fields][nope][eq]": "1"}, {"order_by": "size_SIDEWAYS"}, {"page[limit]": "501"},
                   {"filter[type]": "hologram"}, {"filter[ids]": "1,x"}):
        status, body = await dato.call("GET", "/uploads", **params)
        assert status == 422 and code(body) in ("INVALID_FILTER", "INVALID_FIELD"), (params, body)
    async with dato.client.request("PUT", "/dato" + path, data=b'{"data": [', headers=dato.headers) as reply:
        assert reply.status == 422 and code(await reply.json()) == "INVALID_FORMAT"
    async with dato.client.request("PUT", "/dato" + path, data=b"author=x",
                                   headers={**dato.headers, "Content-Type": "text/plain"}) as reply:
        assert reply.status == 415 and "application/json" in reply.headers["Content-Type"]

    _, still = await dato.call("GET", path, expect=200)
    # Only the one valid change landed: the new file (with its name), no author, no tags.
    attributes = still["data"]["attributes"]
    assert (attributes["author"], attributes["tags"], attributes["filename"]) == (None, [], "x.png")
    assert attributes["md5"] == md5(png(3, 3))


@pytest.mark.parametrize("stack", ["local+sqlite"], indirect=True)
async def test_a_job_result_is_recorded_once(stack):
    dato, _ = await dato_user(stack)
    path = await dato.put_bytes(png(), "once.png")
    reply = await dato.call("POST", "/uploads", resource("upload", path=path, author="first"))
    _, payload = await dato.finished(reply)
    await dato.call("PUT", f"/uploads/{payload['data']['id']}", resource("upload", author="second"), expect=200)
    _, result = await dato.call("GET", f"/job-results/{reply[1]['data']['id']}", expect=200)
    assert result["data"]["attributes"]["payload"]["data"]["attributes"]["author"] == "first"
    # The same upload request cannot make a second upload.
    status, body = await dato.call("POST", "/uploads", resource("upload", path=path))
    assert status == 422 and body["data"][0]["attributes"]["code"] == "INVALID_FIELD"


@pytest.mark.parametrize("stack", ["local+sqlite", "s3+mongodb"], indirect=True)
async def test_a_job_lost_in_a_crash_is_queued_again_by_the_poll(stack):
    """A process killed after storing the upload (owing its probe) but before queueing the
    probe: polling the job result queues it, and the job finishes."""
    dato, _ = await dato_user(stack)
    path = await dato.put_bytes(png(20, 10), "lost.png")
    reply = await dato.call("POST", "/uploads", resource("upload", path=path))
    media_id = int((await dato.finished(reply))[1]["data"]["id"])
    documents = dato.client.app[DOCUMENTS]
    # As after a crash between storing the new file and queueing its jobs: the media owes
    # probe and attributes again, and the old probe job is gone.
    await documents.update("media", media_id, {"owed": ["probe", "attributes"], "md5": None})
    await documents.delete("jobs", f"probe:{media_id}")
    user = await dato.client.app[USERS].authenticate(dato.headers["Authorization"])
    job_id = await dato.client.app[JOB_RESULTS].start(user, media_id=media_id, status=200)  # waits on it
    status, payload = await dato.finished((202, {"data": {"type": "job", "id": job_id}}))
    assert status == 200 and payload["data"]["attributes"]["md5"] == md5(png(20, 10))
