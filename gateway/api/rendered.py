"""Documents the API returns rendered (previews, reports) and their media types."""

from __future__ import annotations

from typing import Any, Final

from fastapi.responses import Response

from gateway.model.dossier import Dossier
from gateway.node import Node
from gateway.report import render_preview

MEDIA: Final = {"html": "text/html; charset=utf-8", "text": "text/plain; charset=utf-8"}
"""The media type of each rendered format."""
RENDERED: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {media: {} for media in MEDIA.values()}}
}
"""The OpenAPI responses of a route that answers with a rendered document."""


def preview(node: Node, dossier: Dossier, recipient: str, fmt: str, lang: str | None) -> Response:
    """The dossier that would go to ``recipient``, rendered to show the person first."""
    text = render_preview(
        dossier, node.directory, cpas_id=node.cpas_id, recipient=recipient, fmt=fmt, lang=lang
    )
    return Response(text, media_type=MEDIA[fmt])
