"""The desk: held requests in a web page, for a CPAS whose vendor has not integrated yet.

Server-rendered (Jinja2, autoescaped), in French, Dutch or German, no
script. A social worker signs in with a client token that has the right
``decide`` and their staff reference; the session lives in the node's memory
only (a restart signs everyone out) and re-checks the token at every page, so
revoking it ends the session. Every form carries a CSRF token: the session's
own once signed in, and a double-submit cookie on the sign-in form.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Final

from fastapi import APIRouter, Cookie, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.api.held import held_out, refuse_as, release_as
from gateway.api.reports import case_exchanges_of, report_for
from gateway.api.tokens import ApiTokens
from gateway.model.codes import Fault, Refusal, RefusalGround
from gateway.model.dossier import OPAQUE_REFERENCE
from gateway.model.errors import GatewayError
from gateway.model.staff import StaffReference, staff_reference
from gateway.node import Node
from gateway.report import purpose_words, reason_words, render_preview

SESSION_COOKIE: Final = "cpasgw_desk"
_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
"""No script, no external resource, forms only to the desk itself."""
LOGIN_COOKIE: Final = "cpasgw_desk_login"
LANGUAGES: Final = (("fr", "Français"), ("nl", "Nederlands"), ("de", "Deutsch"))

WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "Bureau des demandes en attente",
        "token": "Jeton de l’application",
        "staff_reference": "Votre référence d’assistant social",
        "language": "Langue",
        "sign_in": "Se connecter",
        "sign_out": "Se déconnecter",
        "signed_in_as": "connecté comme",
        "held_requests": "Demandes en attente de décision",
        "none_held": "Aucune demande n’attend de décision.",
        "requester": "CPAS demandeur",
        "purpose": "Mission",
        "person": "Numéro de la personne",
        "received": "Reçue",
        "decision": "Décision",
        "case": "dossier",
        "releases": "autorisation(s)",
        "preview": "Montrer le dossier",
        "release": "Autoriser l’envoi",
        "refuse": "Refuser",
        "ground": "Motif du refus",
        "report": "Rapport pour une personne",
        "show_report": "Afficher le rapport",
        "released": "Demande autorisée : le dossier est envoyé.",
        "first_release": "Autorisation enregistrée : un second assistant social doit aussi "
        "autoriser l’envoi.",
        "refused": "Demande refusée : le CPAS demandeur en est informé.",
        "session_ended": "Votre session a pris fin : reconnectez-vous.",
        "case_exchanges": "Échanges d’un dossier",
        "case_reference": "Référence du dossier",
        "show_case": "Afficher les échanges",
        "when": "Quand",
        "event": "Étape",
        "peer": "Autre CPAS",
        "outcome": "Résultat",
        "actor": "Assistant social",
        "none_case": "Aucun échange n’est enregistré sous cette référence.",
        "back": "Retour aux demandes",
    },
    "nl": {
        "title": "Loket voor wachtende aanvragen",
        "token": "Token van de toepassing",
        "staff_reference": "Uw kenmerk als maatschappelijk werker",
        "language": "Taal",
        "sign_in": "Aanmelden",
        "sign_out": "Afmelden",
        "signed_in_as": "aangemeld als",
        "held_requests": "Aanvragen die op een beslissing wachten",
        "none_held": "Geen enkele aanvraag wacht op een beslissing.",
        "requester": "Aanvragend OCMW",
        "purpose": "Opdracht",
        "person": "Nummer van de persoon",
        "received": "Ontvangen",
        "decision": "Beslissing",
        "case": "dossier",
        "releases": "vrijgave(s)",
        "preview": "Dossier tonen",
        "release": "Vrijgeven",
        "refuse": "Weigeren",
        "ground": "Reden van weigering",
        "report": "Verslag voor een persoon",
        "show_report": "Verslag tonen",
        "released": "Aanvraag vrijgegeven: het dossier wordt verstuurd.",
        "first_release": "Vrijgave geregistreerd: een tweede maatschappelijk werker moet ook "
        "vrijgeven.",
        "refused": "Aanvraag geweigerd: het aanvragende OCMW wordt verwittigd.",
        "session_ended": "Uw sessie is beëindigd: meld u opnieuw aan.",
        "case_exchanges": "Uitwisselingen van een dossier",
        "case_reference": "Kenmerk van het dossier",
        "show_case": "Uitwisselingen tonen",
        "when": "Wanneer",
        "event": "Stap",
        "peer": "Ander OCMW",
        "outcome": "Resultaat",
        "actor": "Maatschappelijk werker",
        "none_case": "Onder dit kenmerk is geen uitwisseling geregistreerd.",
        "back": "Terug naar de aanvragen",
    },
    "de": {
        "title": "Schalter für wartende Anfragen",
        "token": "Token der Anwendung",
        "staff_reference": "Ihre Kennung als Sozialarbeiter",
        "language": "Sprache",
        "sign_in": "Anmelden",
        "sign_out": "Abmelden",
        "signed_in_as": "angemeldet als",
        "held_requests": "Anfragen, die auf eine Entscheidung warten",
        "none_held": "Keine Anfrage wartet auf eine Entscheidung.",
        "requester": "Anfragendes ÖSHZ",
        "purpose": "Auftrag",
        "person": "Nummer der Person",
        "received": "Eingegangen",
        "decision": "Entscheidung",
        "case": "Akte",
        "releases": "Freigabe(n)",
        "preview": "Akte zeigen",
        "release": "Freigeben",
        "refuse": "Ablehnen",
        "ground": "Grund der Ablehnung",
        "report": "Bericht für eine Person",
        "show_report": "Bericht anzeigen",
        "released": "Anfrage freigegeben: die Akte wird gesendet.",
        "first_release": "Freigabe erfasst: eine zweite Fachkraft muss ebenfalls freigeben.",
        "refused": "Anfrage abgelehnt: das anfragende ÖSHZ wird informiert.",
        "session_ended": "Ihre Sitzung ist beendet: melden Sie sich erneut an.",
        "case_exchanges": "Austausche einer Akte",
        "case_reference": "Aktenzeichen",
        "show_case": "Austausche anzeigen",
        "when": "Wann",
        "event": "Schritt",
        "peer": "Anderes ÖSHZ",
        "outcome": "Ergebnis",
        "actor": "Sozialarbeiter",
        "none_case": "Unter diesem Aktenzeichen ist kein Austausch verzeichnet.",
        "back": "Zurück zu den Anfragen",
    },
}


@dataclass(frozen=True)
class DeskSession:
    token: str
    staff: StaffReference
    lang: str
    csrf: str


class DeskRefused(GatewayError):
    """A desk form without its CSRF token, or a desk page without a session."""

    code = Fault.DESK_CSRF


def desk_router(node: Node, tokens: ApiTokens) -> APIRouter:
    """The desk's pages, to include in the API's application."""
    router = APIRouter(prefix="/desk", include_in_schema=False)
    templates = Environment(
        loader=FileSystemLoader(str(resources.files("gateway.api").joinpath("templates"))),
        autoescape=select_autoescape(default=True),
    )
    sessions: dict[str, DeskSession] = {}
    lock = threading.Lock()

    def page(name: str, lang: str, status: int = 200, **values: Any) -> HTMLResponse:
        cpas = node.directory.get(node.cpas_id)
        html = templates.get_template(name).render(
            lang=lang, w=WORDS[lang], cpas=cpas.name(lang) if cpas else node.cpas_id, **values
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Security-Policy"] = _POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def session_of(cookie: str | None) -> DeskSession | None:
        with lock:
            session = sessions.get(cookie or "")
        if session is None:
            return None
        try:
            client = tokens.authenticate(session.token)
        except GatewayError:
            client = None
        if client is None or "decide" not in client.scopes:
            with lock:
                sessions.pop(cookie or "", None)
            return None
        return session

    def checked(cookie: str | None, csrf: str) -> DeskSession:
        session = session_of(cookie)
        if session is None:
            raise DeskRefused("Sign in to the desk first.", code=Fault.DESK_SIGNED_OUT)
        if not hmac.compare_digest(session.csrf, csrf):
            raise DeskRefused("The form's security token is missing or wrong.")
        return session

    def to_desk(notice: str | None = None) -> RedirectResponse:
        return RedirectResponse(f"/desk?done={notice}" if notice else "/desk", status_code=303)

    @router.get("/login")
    def login_form(lang: str = "fr") -> HTMLResponse:
        lang = lang if lang in WORDS else "fr"
        csrf = secrets.token_urlsafe(32)
        response = page("login.html", lang, csrf=csrf, languages=LANGUAGES)
        response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, samesite="strict", path="/desk")
        return response

    @router.post("/login")
    def login(
        token: Annotated[str, Form(max_length=200)],
        staff_reference_: Annotated[str, Form(alias="staff_reference", max_length=64)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        lang: Annotated[str, Form(max_length=2)] = "fr",
        login_cookie: Annotated[str | None, Cookie(alias=LOGIN_COOKIE)] = None,
    ) -> Response:
        if not login_cookie or not hmac.compare_digest(login_cookie, csrf):
            raise DeskRefused("The form's security token is missing or wrong.")
        lang = lang if lang in WORDS else "fr"
        staff = staff_reference(staff_reference_)
        client = tokens.authenticate(token)
        if "decide" not in client.scopes:
            raise GatewayError(
                "This client may not decide held requests.", code=Fault.API_FORBIDDEN
            )
        session_id = secrets.token_urlsafe(32)
        with lock:
            sessions[session_id] = DeskSession(token, staff, lang, secrets.token_urlsafe(32))
        response = to_desk()
        response.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="strict", path="/desk"
        )
        response.delete_cookie(LOGIN_COOKIE, path="/desk")
        return response

    @router.get("")
    def desk(
        done: str | None = None,
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        session = session_of(cookie)
        if session is None:
            return RedirectResponse("/desk/login", status_code=303)
        lang, words = session.lang, WORDS[session.lang]
        held = []
        for view in node.held_requests():
            item = held_out(node, view.request, view.person_number).model_dump()
            requester = node.directory.get(item["requester"]["id"])
            if requester is not None:
                item["requester"]["name"] = requester.name(lang)
            held.append(item | {"purpose_words": purpose_words(item["purpose"], lang)})
        grounds = [(g.value, reason_words(g.value, lang)) for g in RefusalGround]
        return page(
            "held.html", lang, held=held, grounds=grounds, csrf=session.csrf,
            staff=session.staff, notice=words.get(done or "", None),
        )  # fmt: skip

    @router.post("/held/{request_id}/release")
    def release(
        request_id: str,
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        session = checked(cookie, csrf)
        decision = release_as(node, request_id, session.staff)
        return to_desk("released" if decision.state == "released" else "first_release")

    @router.post("/held/{request_id}/refuse")
    def refuse(
        request_id: str,
        ground: Annotated[RefusalGround, Form()],
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        session = checked(cookie, csrf)
        refuse_as(node, request_id, session.staff, ground)
        return to_desk("refused")

    @router.post("/held/{request_id}/preview")
    def preview(
        request_id: str,
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        session = checked(cookie, csrf)
        held = node.store.held_request(request_id)
        dossier = node.preview_release(request_id, staff=session.staff)
        if dossier is None or held is None:
            raise GatewayError(
                "The vendor system holds no dossier for this person.",
                code=Refusal.SEND_UNKNOWN_PERSON,
            )
        html = render_preview(
            dossier, node.directory, cpas_id=node.cpas_id, recipient=held.sender, fmt="html"
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.post("/report")
    def report(
        person_number: Annotated[str, Form(max_length=20)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        checked(cookie, csrf)
        text, _ = report_for(node, person_number, None, "html")
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    @router.post("/case")
    def case(
        case_reference: Annotated[str, Form(pattern=OPAQUE_REFERENCE)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        session = checked(cookie, csrf)
        exchanges = case_exchanges_of(node, case_reference, session.lang)
        return page(
            "case.html", session.lang, case_reference=case_reference, exchanges=exchanges,
            csrf=session.csrf, staff=session.staff, notice=None,
        )  # fmt: skip

    @router.post("/logout")
    def logout(
        csrf: Annotated[str, Form(max_length=100)] = "",
        cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Response:
        checked(cookie, csrf)
        with lock:
            sessions.pop(cookie or "", None)
        response = RedirectResponse("/desk/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/desk")
        return response

    return router
