"""An S3 client double that keeps parts the way AWS does: the last upload of a part
number wins. SeaweedFS keeps every version of a part, which hides a writer that
re-uploads a part number another attempt already committed; wrapped around the real
client, this double makes that bug fail the test as it would on AWS."""
from __future__ import annotations

from botocore.exceptions import ClientError


class AwsLikeParts:
    def __init__(self, client) -> None:
        self._client = client
        self.latest: dict[tuple[str, int], str] = {}  # (upload id, part number) -> ETag of the last upload
        self.uploads: list[tuple[str, int]] = []

    def __getattr__(self, name):
        return getattr(self._client, name)

    async def upload_part(self, **kwargs):
        reply = await self._client.upload_part(**kwargs)
        key = (kwargs["UploadId"], kwargs["PartNumber"])
        self.latest[key] = reply["ETag"]
        self.uploads.append(key)
        return reply

    async def complete_multipart_upload(self, **kwargs):
        for part in kwargs["MultipartUpload"]["Parts"]:
            if self.latest.get((kwargs["UploadId"], part["PartNumber"])) != part["ETag"]:
                raise ClientError({"Error": {"Code": "InvalidPart", "Message": "part was replaced"}},
                                  "CompleteMultipartUpload")
        return await self._client.complete_multipart_upload(**kwargs)
