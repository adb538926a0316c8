"""The Notifier port on SNS: publish to every region's alarm topic, the DR region's first, with
the subject and message scrubbed of secrets.
"""

from __future__ import annotations

import logging
import re

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, fail, region_of_arn
from runbooks.core.errors import Unreachable
from runbooks.core.redact import scrub

log = logging.getLogger(__name__)


class SnsNotifier:
    """Publishes to every region's alarm topic, the DR region's first (the one most likely up)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def topics(self) -> list[tuple[str, str]]:
        ordered = [self.outputs.secondary] + [r for r in self.outputs.regions.values() if r.role != "secondary"]
        return [(r.name, r.alarm_topic_arn) for r in ordered if r.alarm_topic_arn]

    def notify(self, subject: str, message: str) -> None:
        topics = self.topics()
        if not topics:
            log.info("%s: %s (no alarm topic in the outputs)", subject, scrub(message))
            return
        clean_subject = re.sub(r"[^\x20-\x7e]", " ", scrub(subject))[:99] or "regionpair"
        failed = []
        for region, arn in topics:
            try:
                self.clients.call("sns", region_of_arn(arn) or region, "publish", TopicArn=arn,
                                  Subject=clean_subject, Message=scrub(message))
            except Unreachable as exc:
                failed.append(f"{arn}: {exc}")
            except ClientError as exc:
                failed.append(str(fail(exc, f"notify {arn}")))
        if len(failed) == len(topics):
            raise Unreachable("no alarm topic took the notification: " + "; ".join(failed))
        for f in failed:
            log.warning("notification not delivered to %s", f)
