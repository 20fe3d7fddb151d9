"""Prometheus metrics on a port of their own (DOCQA_METRICS_PORT), never on the public one.

What the code observes as it runs is in docqa.ops.instruments. What the database knows is
counted here when Prometheus scrapes, so no other module has to keep a gauge up to date:
answers by state, documents and stored files by ingest status, and the Moonshot account's
files and bytes against docqa's limits.

With several processes on a machine, prometheus_client keeps each process's counters to
itself unless PROMETHEUS_MULTIPROC_DIR names a directory they all share; the exporter then
adds them up (see the README).
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Count
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from docqa.chat.models import Message, Role, State
from docqa.documents.models import Document, Status, StoredFile
from docqa.documents.selectors import account_usage

logger = logging.getLogger("docqa.ops.metrics")


def _by(queryset, field: str, choices) -> dict[str, int]:
    counts = dict.fromkeys(choices.values, 0)
    for row in queryset.values(field).annotate(n=Count("pk")).order_by():
        counts[row[field]] = row["n"]
    return counts


class DatabaseCollector(Collector):
    """Counts read from the database at scrape time (one GROUP BY per family)."""

    def collect(self):
        try:
            answers = _by(Message.objects.filter(role=Role.ASSISTANT), "state", State)
            documents = _by(Document.objects.all(), "stored_file__status", Status)
            stored = _by(StoredFile.objects.all(), "status", Status)
            files, used = account_usage()
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer: %s", exc)
            yield GaugeMetricFamily("docqa_database_up", "Whether the last scrape read the database.", 0)
            return
        finally:
            # Each scrape runs on a new thread of the exporter: its connection goes with it.
            connections.close_all()
        yield GaugeMetricFamily("docqa_database_up", "Whether the last scrape read the database.", 1)
        family = GaugeMetricFamily("docqa_answers", "Answers by state.", labels=["state"])
        for state, n in answers.items():
            family.add_metric([state], n)
        yield family
        family = GaugeMetricFamily("docqa_documents", "Users' documents by ingest status.", labels=["status"])
        for status, n in documents.items():
            family.add_metric([status], n)
        yield family
        family = GaugeMetricFamily(
            "docqa_stored_files",
            "Distinct files (shared by identical uploads) by ingest status.",
            labels=["status"],
        )
        for status, n in stored.items():
            family.add_metric([status], n)
        yield family
        yield GaugeMetricFamily("docqa_account_files", "Files docqa holds on the Moonshot account.", files)
        yield GaugeMetricFamily(
            "docqa_account_files_limit", "DOCQA_ACCOUNT_MAX_FILES.", settings.DOCQA_ACCOUNT_MAX_FILES
        )
        yield GaugeMetricFamily("docqa_account_bytes", "Bytes docqa holds on the Moonshot account.", used)
        yield GaugeMetricFamily(
            "docqa_account_bytes_limit", "DOCQA_ACCOUNT_MAX_BYTES.", settings.DOCQA_ACCOUNT_MAX_BYTES
        )


def registry_build() -> CollectorRegistry:
    """What the exporter serves: this process's metrics (or, in multiprocess mode, every
    process's), plus the database's counts."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    registry.register(DatabaseCollector())
    return registry


class _ProcessRegistry(Collector):
    """The default registry's metrics (ours and the process/platform collectors), served
    through another registry without registering the database counts in the default one."""

    def collect(self):
        yield from REGISTRY.collect()


_server = None


def metrics_server_start(*, port: int, host: str) -> bool:
    """Serve /metrics on host:port in a daemon thread, once per process. False if the port
    is taken (another process on this machine serves it) — the web process goes on."""
    global _server
    if _server is not None:
        return True
    try:
        _server, _thread = start_http_server(port, addr=host, registry=registry_build())
    except OSError as exc:
        logger.error("metrics: cannot listen on %s:%s (%s); this process serves no metrics", host, port, exc)
        return False
    logger.info("metrics: serving on http://%s:%s/metrics", host, port)
    return True
