"""Kopf's annotation diff-base storage, built without deep-copying what it throws away.

Kopf builds a resource's "essence" (spec, labels, annotations) on every watch event,
whether or not any handler compares it, by deep-copying the whole body and then deleting
`status` and `metadata`. A PerfBaseline's status and managedFields are most of its
12.5 KiB, and every status patch comes back as a watch event: at 1,000 PerfBaselines that
copy was 6 % of the event loop (py-spy on bench/operator_scale, 2026-12-03). Handing Kopf
the body without those two parts gives the same essence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf


class LeanAnnotationsDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[Any] | None = None,
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or ())
        if fields:
            # A handler watching extra fields may name status or managedFields: Kopf's way.
            return super().build(body=body, extra_fields=fields)
        slim: dict[str, Any] = {k: v for k, v in body.items() if k != "status"}
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            slim["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
        return super().build(body=kopf.Body(cast(kopf.RawBody, slim)), extra_fields=fields)
