"""Bundles in S3 (or an S3-compatible store), with server-side encryption requested on every
write. Uploads are multipart with fixed-size parts, so memory stays at one part per upload."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dsar.bundles.errors import BundleMissing
from dsar.bundles.store import check_name
from dsar.errors import InvalidInput

PART_SIZE = 8 * 1024 * 1024
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")


class S3BundleStore:
    """``s3://bucket/prefix``. ``sse`` is sent as ServerSideEncryption on every upload."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        sse: str = "AES256",
        kms_key_id: str | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        part_size: int = PART_SIZE,
    ) -> None:
        if sse not in SSE_MODES:
            raise InvalidInput(f"server-side encryption {sse!r} is not supported",
                               f"use one of {', '.join(SSE_MODES)}")
        if kms_key_id and not sse.startswith("aws:kms"):
            raise InvalidInput("kms_key_id needs sse='aws:kms'", "set sse to 'aws:kms'")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"
        self.server_side_encrypted = True
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region_name
        )
        self._sse: dict[str, str] = {"ServerSideEncryption": sse}
        if kms_key_id:
            self._sse["SSEKMSKeyId"] = kms_key_id
        self._part_size = part_size

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def write_stream(self, name: str, chunks: Iterable[bytes], *, durable: bool = True) -> int:
        key = self._key(name)
        buffer, total, parts = bytearray(), 0, []
        upload_id: str | None = None
        try:
            for chunk in chunks:
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= self._part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, **self._sse
                        )["UploadId"]
                    body = bytes(buffer[: self._part_size])
                    del buffer[: self._part_size]
                    number = len(parts) + 1
                    etag = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=body,
                    )["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer),
                                       **self._sse)
                return total
            if buffer or not parts:
                number = len(parts) + 1
                etag = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=bytes(buffer),
                )["ETag"]
                parts.append({"ETag": etag, "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id)
            raise
        return total

    def open_stream(self, name: str) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise BundleMissing(f"bundle file {name} is not in {self.location}",
                                    "it was deleted after expiry; ask for a new bundle") from None
            raise
        return _chunks(response["Body"])

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def names(self, suffix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(self.prefix) :]
                if "/" not in name and name.endswith(suffix):
                    yield name

    def url_for(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def presigned_url(self, name: str, expires_at: datetime, now: datetime,
                      filename: str | None = None) -> str:
        """A GET URL for the stored blob that S3 itself stops honouring at ``expires_at``
        (at most 7 days ahead, S3's limit). It serves the blob *as stored*: for a bundle built
        with a key that is our ciphertext, so use it for bundles built with ``key=None``."""
        seconds = int((expires_at - now).total_seconds())
        if seconds <= 0:
            raise InvalidInput("the presigned URL would already be expired",
                               "choose an expiry in the future")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(name)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=min(seconds, 7 * 24 * 3600)
        )


def _chunks(body: Any, block: int = 1024 * 1024) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(block)
    finally:
        body.close()
