"""The keys every MSK Connect section of the stack config has in common — the Kafka Connect version,
the MCUs and workers, the custom plugin's S3 location — read and checked once, for
``streaming.mirrormaker2`` (``stacks/mm2config.py``) and ``kafka_backup`` (``stacks/kafka_backup.py``)
alike. Each section keeps its own key names (what users wrote stays valid); every refusal is a
``ConfigError`` naming the key path as written, the value, the fix and the document.

``o`` below is a ``contract.fields.Fields`` with the config's words (``stacks.config_reader.section``):
the section, or its ``capacity``/``plugin`` object.
"""

from __future__ import annotations

import re
from typing import Any

from components.aws_limits import KAFKACONNECT_VERSIONS, MCU_COUNTS, PLUGIN_TYPES
from stacks.config_reader import ConfigError

BUCKET_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DOC_VERSIONS = 'MSK Developer Guide, "Understand MSK Connect"'
DOC_PLUGINS = 'MSK Developer Guide, "Create custom plugins"'
DOC_CAPACITY = ('MSK Developer Guide, "Understand connector capacity"; MSK Connect API Reference, AutoScaling, '
                'ScaleInPolicy, ScaleOutPolicy, ProvisionedCapacity')


def kafkaconnect_version(o: Any, name: str, default: str = "3.7.x") -> str:
    """``o.<name>``: one of the Kafka Connect versions MSK Connect runs."""
    version = o.string(name, default, pattern=re.compile(r"^\S+$"), hint=default)
    if version not in KAFKACONNECT_VERSIONS:
        raise ConfigError(o.key(name), version, f"allowed: {' | '.join(KAFKACONNECT_VERSIONS)}: MSK Connect runs Kafka "
                          f"Connect {' or '.join(KAFKACONNECT_VERSIONS)} ({DOC_VERSIONS}); use 3.7.x")
    return version


def mcu_count(o: Any, name: str = "mcu_count", default: int = 1) -> int:
    """``o.<name>``: MCUs per worker, 1, 2, 4 or 8."""
    why = f"MCUs per worker: 1, 2, 4 or 8 ({DOC_CAPACITY})"
    mcu = o.integer(name, default, minimum=min(MCU_COUNTS), maximum=max(MCU_COUNTS), why=why)
    if mcu not in MCU_COUNTS:
        raise ConfigError(o.key(name), mcu, why)
    return mcu


def worker_count(o: Any, name: str, default: int = 1, maximum: int | None = None) -> int:
    """``o.<name>``: a worker count, at least one (no upper bound was found documented; ``maximum`` is the
    section's own sanity bound)."""
    return o.integer(name, default, minimum=1, maximum=maximum, why="a connector runs at least one worker")


def plugin_location(o: Any, bucket_key: str, file_key: str, *, types: tuple[str, ...] = PLUGIN_TYPES,
                    required: bool = True, version_key: str | None = None,
                    contents: str = "") -> tuple[str | None, str | None, str | None]:
    """The custom plugin's S3 location: ``o.<bucket_key>`` (a bucket ARN), ``o.<file_key>`` (the key of a
    file of one of ``types``, at most S3's 1024-character key), ``o.<version_key>`` (an object version, if
    the section has one). Not ``required``: absent keys give None (the caller decides when they are
    needed). ``contents``: what the file holds, for the hint."""
    kw: dict[str, Any] = {} if required else {"default": None}
    bucket = o.string(bucket_key, **kw, pattern=BUCKET_ARN,
                      hint=f"an S3 bucket ARN such as arn:aws:s3:::my-plugins ({DOC_PLUGINS}: the plugin is a file "
                           "in an S3 bucket)")
    suffixes = "|".join(re.escape(t) for t in types)
    names = " or ".join(f".{t}" for t in types)
    key = o.string(file_key, **kw, pattern=re.compile(rf"^[^\s]{{1,1020}}\.({suffixes})$"),
                   hint=f"the key of a {names} file ({DOC_PLUGINS}: a JAR, or a ZIP of JARs)"
                        + (f": {contents}" if contents else ""))
    version = o.string(version_key, None, pattern=re.compile(r"^\S{1,1024}$"),
                       hint="an S3 version id") if version_key else None
    return bucket, key, version
