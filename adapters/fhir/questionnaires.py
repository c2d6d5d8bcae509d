"""The Questionnaires a referral may carry answers to, and strict reading of the answers.

* the kartleggingsskjema: work situation, sick-leave status and start, Nav contact, and the
  consent questions — coded, boolean and date answers only, so no free text is stored;
* PHQ-9 and GAD-7: one integer item per question, 0-3.

Answers are read from the raw JSON with exact JSON types (fhir.resources turns "3" into 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.fhir.outcome import FhirError, Issue
from coordinator.intake import measures

BASE = "urn:coordinator:questionnaire"
KARTLEGGING = f"{BASE}:kartlegging|1"
PHQ9 = f"{BASE}:phq9|1"
GAD7 = f"{BASE}:gad7|1"
WORK_SITUATIONS = (*measures.WORK_STATUSES, "not_working")


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    type: str                            # choice, boolean, date, integer
    required: bool = False
    options: tuple[str, ...] = ()
    max_value: int | None = None         # integer items: 0..max_value


KARTLEGGING_ITEMS = (
    Item("work_situation", "Arbeidssituasjon nå", "choice", True, WORK_SITUATIONS),
    Item("sick_leave_start", "Første sykmeldingsdag (hvis sykmeldt)", "date"),
    Item("sick_leave_pending", "Avventende sykmelding", "boolean"),
    Item("in_rph_treatment", "Får behandling i Rask psykisk helsehjelp", "boolean"),
    Item("nav_contact", "Har kontakt med Nav", "boolean", True),
    Item("nav_veileder_known", "Kjenner navnet på sin Nav-veileder", "boolean"),
    Item("consent_nav_dialogue", "Samtykker til dialog mellom helsetjenesten og Nav",
         "boolean", True),
    Item("consent_share_kartlegging", "Samtykker til at kartleggingen deles med Nav",
         "boolean", True),
)
PHQ9_TEXTS = ("Lite interesse", "Nedstemt", "Søvnvansker", "Trøtthet", "Appetitt",
              "Negativt selvbilde", "Konsentrasjon", "Tempo", "Tanker om å skade seg")
GAD7_TEXTS = ("Nervøs", "Kan ikke stoppe bekymring", "Bekymrer seg for mye", "Vansker med å "
              "slappe av", "Rastløs", "Irritabel", "Redd for at noe forferdelig skal skje")


def _scale(prefix: str, texts: tuple[str, ...]) -> tuple[Item, ...]:
    return tuple(Item(f"{prefix}-{n}", t, "integer", True,
                      max_value=measures.INSTRUMENTS[prefix].item_max)
                 for n, t in enumerate(texts, start=1))


FORMS: Mapping[str, tuple[str, tuple[Item, ...]]] = {
    KARTLEGGING: ("Kartleggingsskjema", KARTLEGGING_ITEMS),
    PHQ9: ("PHQ-9", _scale("phq9", PHQ9_TEXTS)),
    GAD7: ("GAD-7", _scale("gad7", GAD7_TEXTS)),
}
INSTRUMENT_OF = {PHQ9: "phq9", GAD7: "gad7"}


def questionnaire(canonical: str) -> dict[str, Any]:
    """The FHIR Questionnaire for a canonical ``url|version``."""
    title, items = FORMS[canonical]
    url, version = canonical.split("|")
    return {
        "resourceType": "Questionnaire", "id": url.rsplit(":", 1)[1], "url": url,
        "version": version, "title": title, "status": "active",
        "item": [{"linkId": i.link_id, "text": i.text, "type": i.type, "required": i.required,
                  **({"answerOption": [{"valueCoding": {"code": o}} for o in i.options]}
                     if i.options else {})} for i in items],
    }


_VALUE_KEY = {"choice": "valueCoding", "boolean": "valueBoolean", "date": "valueDate",
              "integer": "valueInteger"}


def _integer(item: Item, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(item, "må være et heltall", where)
    if item.max_value is not None and not 0 <= value <= item.max_value:
        raise FhirError(422, Issue("value", f"svaret på {item.link_id!r} må være fra 0 "
                                   f"til {item.max_value}", where, "out_of_range"))
    return value


def _date(item: Item, value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise _bad(item, "må være en dato (ÅÅÅÅ-MM-DD)", where)
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise _bad(item, "må være en gyldig dato", where) from None


def _bad(item: Item, why: str, where: str) -> FhirError:
    return FhirError(422, Issue("value", f"svaret på {item.link_id!r} {why}", where,
                                "bad_answer"))


def _answer(item: Item, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict) or set(raw) != {_VALUE_KEY[item.type]}:
        raise _bad(item, f"må være ett {_VALUE_KEY[item.type]}", where)
    value = raw[_VALUE_KEY[item.type]]
    if item.type == "boolean":
        if not isinstance(value, bool):
            raise _bad(item, "må være true eller false", where)
        return value
    if item.type == "integer":
        return _integer(item, value, where)
    if item.type == "date":
        return _date(item, value, where)
    code = value.get("code") if isinstance(value, dict) else None
    if code not in item.options:
        raise _bad(item, f"må være en av {', '.join(item.options)}", where)
    return code


def read_answers(canonical: str, raw_items: Any, where: str) -> dict[str, Any]:
    """linkId -> answer for a QuestionnaireResponse of ``canonical``. Raises: FhirError."""
    _, items = FORMS[canonical]
    by_id = {i.link_id: i for i in items}
    if not isinstance(raw_items, list):
        raise FhirError(422, Issue("required", "skjemaet har ingen svar", f"{where}.item",
                                   "no_answers"))
    answers: dict[str, Any] = {}
    for n, raw in enumerate(raw_items):
        at = f"{where}.item[{n}]"
        link = raw.get("linkId") if isinstance(raw, dict) else None
        item = by_id.get(link) if isinstance(link, str) else None
        if item is None or not isinstance(link, str):
            raise FhirError(422, Issue("value", f"ukjent spørsmål {link!r}", at, "unknown_item"))
        if link in answers:
            raise FhirError(422, Issue("duplicate", f"spørsmålet {link!r} er besvart to ganger",
                                       at, "duplicate_item"))
        given = raw.get("answer")
        if not isinstance(given, list) or len(given) != 1:
            raise FhirError(422, Issue("value", f"{link!r} må ha nøyaktig ett svar",
                                       f"{at}.answer", "one_answer"))
        answers[link] = _answer(item, given[0], f"{at}.answer[0]")
    missing = [i.link_id for i in items if i.required and i.link_id not in answers]
    if missing:
        raise FhirError(422, Issue("required", f"mangler svar på {', '.join(missing)}",
                                   f"{where}.item", "missing_answers"))
    return answers
