"""The services' translatable messages (impexmod.messages): English text, msgid and values."""

from __future__ import annotations

import pickle

import pytest

from impexmod.messages import Message, msg
from impexmod.runs.schedule import InvalidSchedule, parse_schedule
from impexmod.runs.tasks import InvalidTask, validate_notifications

FRENCH = {
    "%(address)s is not an e-mail address": "%(address)s n’est pas une adresse e-mail",
    "%(label)s: %(reason)s": "%(label)s : %(reason)s",
}


def french(msgid: str) -> str:
    return FRENCH.get(msgid, msgid)


def test_a_message_is_its_english_text():
    said = msg("%(address)s is not an e-mail address", address=repr("ops@"))
    assert isinstance(said, str) and said == "'ops@' is not an e-mail address"
    assert str(said) == said and f"{said}" == said and said[:1] == "'"
    assert said.msgid == "%(address)s is not an e-mail address"
    assert said.params == {"address": "'ops@'"}
    assert repr(said) == repr("'ops@' is not an e-mail address")


def test_a_message_without_values_keeps_its_percent_signs():
    assert msg("100% or nothing") == "100% or nothing"
    assert msg("%(n)s%% done", n=5) == "5% done"


def test_a_message_is_translated_with_its_values_nested_messages_too():
    reason = msg("%(address)s is not an e-mail address", address="'ops@'")
    said = msg("%(label)s: %(reason)s", label="Buyers", reason=reason)
    assert said == "Buyers: 'ops@' is not an e-mail address"
    assert said.translate(french) == "Buyers : 'ops@' n’est pas une adresse e-mail"
    assert msg("untranslated").translate(french) == "untranslated"


def test_a_message_survives_pickling():
    said = pickle.loads(pickle.dumps(msg("%(n)s left", n=3)))
    assert isinstance(said, Message) and said == "3 left" and said.params == {"n": 3}


def test_the_services_exceptions_keep_field_and_english_text():
    with pytest.raises(InvalidTask) as raised:
        validate_notifications("ops@shop.test, nobody", None)
    exc = raised.value
    assert exc.field == "notify_emails"
    assert exc.message == "'nobody' is not an e-mail address"
    assert str(exc) == "notify_emails: 'nobody' is not an e-mail address"
    assert exc.message.msgid == "%(address)s is not an e-mail address"
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule("monthly@40@02:00")
    assert str(raised.value) == raised.value.message == "monthly: the day must be 1 to 31, got '40'"
    assert isinstance(raised.value.message, Message)
