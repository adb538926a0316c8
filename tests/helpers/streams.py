"""An outputs document with Kafka and S3 streams, for the streams, endpoints, trust and metrics tests."""

from __future__ import annotations

from tests.samples import pair_document

APPS = ["/regionpair/checkout/kafka-bootstrap", "/regionpair/ledger/kafka-bootstrap"]


BUCKET_PARAM = "/regionpair/checkout/objects-bucket"


def streams_document() -> dict:
    doc = pair_document(n_databases=1)
    for region in doc["regions"].values():
        region["streaming"].update(client_parameters=APPS, consumer_groups=["ledger", "audit"],
                                   topics=["orders"], client_refresh_seconds=2)
        region["storage"]["writer_parameter"] = BUCKET_PARAM
    return doc
