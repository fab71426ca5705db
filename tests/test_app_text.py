"""The app's words: four languages with the same keys and placeholders, page text Gradio's i18n can show as it is,
and the language and number conventions of each."""
from __future__ import annotations

import pytest

from coughkd_app import text


@pytest.mark.parametrize("lang", text.LANGUAGES[1:])
def test_every_language_has_every_key_with_the_same_placeholders(lang: str) -> None:
    assert set(text.TEXT[lang]) == set(text.EN)
    for key, template in text.EN.items():
        assert text.placeholders(text.TEXT[lang][key]) == text.placeholders(template), key


@pytest.mark.parametrize("lang", text.LANGUAGES)
def test_page_text_is_complete_and_free_of_message_syntax(lang: str) -> None:
    """Gradio formats custom translations as ICU messages, where braces are placeholders."""
    page = text.page_text(lang)
    assert not any("{" in value or "}" in value for value in page.values())
    assert page["heading"] == "# " + text.say(lang, "title")
    assert page["notice_local"].startswith(text.say(lang, "disclaimer"))
    assert text.say(lang, "kept") in page["notice_local"] and text.say(lang, "kept") in page["notice_shared"]


@pytest.mark.parametrize("lang", text.LANGUAGES[1:])
def test_translations_are_translated(lang: str) -> None:
    """No key left in English by mistake (names and units aside)."""
    assert [key for key, value in text.TEXT[lang].items() if value == text.EN[key]] == []


def test_every_disclaimer_says_it_is_no_diagnosis_and_when_to_get_help() -> None:
    words = {"en": ("not a diagnosis", "medical help"), "ru": ("не диагноз", "медицинской помощью"),
             "es": ("ni un diagnóstico", "atención médica"), "hi": ("निदान", "चिकित्सा सहायता")}
    for lang, (no_diagnosis, help_now) in words.items():
        disclaimer = text.say(lang, "disclaimer")
        assert no_diagnosis in disclaimer and help_now in disclaimer and "COVID-19" in disclaimer


@pytest.mark.parametrize(("tag", "lang"), [("ru-RU", "ru"), ("es-419", "es"), ("hi", "hi"), ("en-GB", "en"),
                                           ("fr-FR", "en"), ("", "en"), (None, "en"), ("ES_es", "es")])
def test_language_of_a_browser_tag(tag: str | None, lang: str) -> None:
    assert text.language(tag) == lang


def test_say_fills_placeholders_and_falls_back_to_english() -> None:
    assert text.say("ru", "ready", name="a.webm") == "Готово к анализу: a.webm. Нажмите «Анализ»."
    assert text.say("xx", "analyse") == "Analyse"


@pytest.mark.parametrize(("lang", "point"), [("en", "."), ("hi", "."), ("ru", ","), ("es", ",")])
def test_decimals_follow_the_language(lang: str, point: str) -> None:
    assert text.decimal(lang, 0.5) == f"0{point}5" and text.decimal(lang, 3.26) == f"3{point}3"
    assert text.decimal(lang, 5.0) == "5" and text.decimal(lang, 1.234, 2) == f"1{point}23"
