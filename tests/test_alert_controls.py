"""Rules the analyst controls: `enabled: false` switches a rule off, `mute_until` holds
its digests (the stories wait for the first one after it), and a rule naming a source
the sources file does not have, or a language Dozor does not detect, is refused at load
with the file, the rule and the field."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path

import pytest

from pipelines.alert import load_rules, notify
from pipelines.config.config import Config
from pipelines.errors import ConfigError
from pipelines.store.sqlite import SQLiteStore
from tests.support.alerts import rules_file, stored_corpus


def _outbox() -> list[Path]:
    return sorted(Config.from_env().paths.outbox.glob("*.eml"))


def _rules(mute: str) -> str:
    return f"""\
rules:
  - name: paused
    query: 'relevant:true'
    to: [paused@example.org]
    enabled: false
  - name: muted
    query: 'relevant:true'
    to: [muted@example.org]
    mute_until: '{mute}'
"""


def test_disabled_rules_never_match_and_muted_ones_wait(tmp_path: Path,
                                                        store: SQLiteStore) -> None:
    _, new_ids = stored_corpus(store)
    report = notify(store, rules_file(tmp_path, _rules("2999-01-01T00:00:00Z")), new_ids,
                    Config.from_env())
    assert report.digests == [] and _outbox() == []
    assert "paused" not in report.queued and report.queued["muted"] > 0
    assert store.pending_deliveries("paused") == [] and store.pending_deliveries("muted")
    # the mute has passed: the stories matched meanwhile go in the next digest
    report = notify(store, rules_file(tmp_path, _rules("2020-01-01")), [], Config.from_env())
    [eml] = _outbox()
    assert "-muted-" in eml.name and store.pending_deliveries("muted") == []
    assert store.pending_deliveries("paused") == []


@pytest.mark.parametrize("field, value, message", [
    ("sources", "[ria, nowhere]", "rules[0] (r) → sources: unknown source 'nowhere'"),
    ("languages", "[ru, de]", "languages"),
])
def test_unknown_sources_and_languages_are_refused_at_load(tmp_path: Path, field: str,
                                                           value: str, message: str) -> None:
    path = rules_file(tmp_path, f"rules:\n  - name: r\n    query: x\n    to: [a@example.org]\n"
                                f"    {field}: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path, sources={"ria", "meduza"})
    assert str(path) in str(info.value) and message in str(info.value)
    assert "r" in str(info.value)


def test_digest_names_its_list_and_how_to_unsubscribe(tmp_path: Path,
                                                      store: SQLiteStore) -> None:
    docs, new_ids = stored_corpus(store)
    rules = rules_file(tmp_path, """\
rules:
  - name: recruitment
    title: Prisoner recruitment
    query: 'relevant:true'
    to: [desk@example.org]
""")
    notify(store, rules, new_ids, Config.from_env())
    [eml] = _outbox()
    message = message_from_bytes(eml.read_bytes(), policy=default_policy)
    sender = parseaddr(message["From"])[1]
    domain = sender.rpartition("@")[2]
    assert message["List-Id"] == f"Prisoner recruitment <recruitment.dozor.{domain}>"
    assert message["List-Unsubscribe"] == f"<mailto:{sender}?subject=unsubscribe%20recruitment>"
