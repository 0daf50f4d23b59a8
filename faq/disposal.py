"""Disposal's part in the FAQ (consult.services.retention): the links from entries to the
closed tickets they were drafted from (faq_source). The entries themselves were redacted before
review and keep no personal data; an entry loses only its link to the disposed case."""

from __future__ import annotations

from consult.plugins import DisposalBatch
from faq.models import FaqSource


def dispose(batch: DisposalBatch) -> None:
    table = FaqSource.__table__
    condition = batch.among(table.c.ticket_id)
    grouped = batch.grouped(table, condition)
    result = batch.connection.execute(table.delete().where(condition))
    batch.count("faq_source", "FAQの元になった相談への参照", result.rowcount, grouped)
