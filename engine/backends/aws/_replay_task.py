"""The producer task's entry point when the portal starts a replay on ECS.

``python -m engine.backends.aws._replay_task BUCKET PREFIX [replay options]`` downloads the
files the portal uploaded under ``s3://BUCKET/PREFIX`` (keeping each file's class folder,
which 3W file names need) under ``$PETROSTREAM_HOME`` (the task's scratch volume) and runs
``engine replay`` on them.
The download folder depends only on the prefix, so a replay of the same files that was
stopped resumes where it stopped, as it does locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3

from engine import cli
from engine.backends.aws._config import client_config
from engine.backends.aws._errors import Resource, translated
from engine.config import Settings
from engine.errors import PetroStreamError

__all__ = ["download", "main"]

#: Folder under the home the uploads are downloaded into.
INPUT_FOLDER = "replay-input"


def download(bucket: str, prefix: str, into: Path) -> Path:
    """Fetch every object under the prefix into a folder named after it; return that folder."""
    folder = (into / prefix.strip("/").replace("/", "-")).resolve()
    s3 = boto3.session.Session().client("s3", config=client_config())
    with translated(Resource("S3 bucket", bucket, "PETROSTREAM_RAW_BUCKET")):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                target = folder / entry["Key"][len(prefix):]
                if folder not in target.resolve().parents:
                    continue  # a key with "../" would escape the folder
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, entry["Key"], str(target))
    return folder


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) < 2:
        print("usage: python -m engine.backends.aws._replay_task BUCKET PREFIX [replay options]", file=sys.stderr)
        return 2
    bucket, prefix, options = arguments[0], arguments[1], arguments[2:]
    try:
        folder = download(bucket, prefix, Settings.from_env().home / INPUT_FOLDER)
    except PetroStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return cli.main(["replay", "--data", str(folder), *options])


if __name__ == "__main__":
    sys.exit(main())
