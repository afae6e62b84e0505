"""The dashboard's words in English and German; a page asks for its language once."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "de")

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "app": "leadscore",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "username": "Username",
        "password": "Password",
        "bad_login": "Unknown username or wrong password.",
        "expired": "The form expired; please try again.",
        "queue": "Sales queue",
        "queue_intro": "Hot and sales-ready leads, most urgent first.",
        "lead": "Lead",
        "score": "Score",
        "cell": "Cell",
        "temperature": "Temperature",
        "stage": "Stage",
        "queue_name": "Queue",
        "sla": "SLA",
        "interest": "Primary interest",
        "overdue": "overdue by",
        "due_in": "due in",
        "no_sla": "no SLA",
        "worked": "Mark worked",
        "worked_done": "Marked {lead} as worked.",
        "empty": "No lead waits for sales.",
        "priority": "priority account",
        "language": "Language",
        "required": "required",
        "skip": "Skip to the content",
    },
    "de": {
        "app": "leadscore",
        "sign_in": "Anmelden",
        "sign_out": "Abmelden",
        "username": "Benutzername",
        "password": "Passwort",
        "bad_login": "Unbekannter Benutzername oder falsches Passwort.",
        "expired": "Das Formular ist abgelaufen; bitte erneut versuchen.",
        "queue": "Vertriebs-Warteschlange",
        "queue_intro": "Heiße und vertriebsreife Leads, die dringendsten zuerst.",
        "lead": "Lead",
        "score": "Score",
        "cell": "Feld",
        "temperature": "Temperatur",
        "stage": "Phase",
        "queue_name": "Warteschlange",
        "sla": "SLA",
        "interest": "Hauptinteresse",
        "overdue": "überfällig seit",
        "due_in": "fällig in",
        "no_sla": "kein SLA",
        "worked": "Als bearbeitet markieren",
        "worked_done": "{lead} als bearbeitet markiert.",
        "empty": "Kein Lead wartet auf den Vertrieb.",
        "priority": "Zielkunde",
        "language": "Sprache",
        "required": "fehlt",
        "skip": "Zum Inhalt springen",
    },
}


def words(lang: str) -> dict[str, str]:
    """The labels of a language (English for any other)."""
    return _WORDS.get(lang, _WORDS["en"])
