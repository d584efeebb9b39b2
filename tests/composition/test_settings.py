"""The declaration of settings is the one source: every setting is a flag and an environment
name with a default its own validation accepts, every preset is a valid value, and every field
of the conversation's bundles is fed by a declared setting (or is named as no setting)."""

from __future__ import annotations

import argparse

import attrs
import pytest

from application.settings import ConversationSettings
from composition.config import build_parser, resolve, validate
from composition.containers import conversation_settings
from composition.settings import (
    BUNDLES,
    NOT_SETTINGS,
    PROFILES,
    SETTINGS,
    ConfigError,
    Setting,
    profile_presets,
)
from domain.barge_in import BargeInConfig
from domain.chat_window import ChatConfig
from domain.end_of_turn import TranscriptTurnConfig
from domain.sentence_batching import BatchingConfig
from domain.turn_segmentation import VadConfig


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def accepts(setting: Setting, value: object) -> bool:
    if setting.choices is not None and value not in setting.choices:
        return False
    try:
        if setting.check is not None and value is not None:
            setting.check(setting.name, value)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_every_setting_is_a_flag_and_an_environment_name_with_a_valid_default(
    setting: Setting,
) -> None:
    assert f"--{setting.name}" in options(build_parser())
    assert accepts(setting, setting.default)
    assert all(accepts(setting, value) for value in setting.presets.values())
    assert set(setting.presets) <= set(PROFILES)
    env_value = "true" if setting.is_bool else (setting.choices or ("3",))[-1]
    from_env = resolve([], environ={setting.env_var: str(env_value)})
    assert setting.env_var == "VOICE_AGENT_" + setting.name.upper()
    assert setting.name in from_env["explicit"]


def test_names_are_unique() -> None:
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves_to_a_valid_configuration(profile: str) -> None:
    values = resolve(["--profile", profile], environ={})
    validate(values)
    conversation_settings(values)
    for name, value in profile_presets()[profile].items():
        assert values[name] == value


def test_every_bundle_field_is_a_declared_setting_or_named_as_none() -> None:
    fed = {s.into for s in SETTINGS if s.into is not None}
    fields = {
        f"{prefix}.{field}" if prefix else field
        for prefix, bundle in BUNDLES.items()
        for field in attrs.fields_dict(bundle)
    }
    assert fed <= fields  # no setting feeds a field that does not exist
    assert fields - fed == NOT_SETTINGS


def test_the_default_configuration_builds_the_domains_defaults() -> None:
    built = conversation_settings(resolve([], environ={}))
    # The deliberate differences: the transcript judges when a turn ends, the agent speaks a
    # first fragment at once, the user may interrupt it (the domain's own defaults are silence
    # alone and half duplex), and what they type is in --language's default, English.
    assert built == ConversationSettings(
        vad=VadConfig(transcript_turn=TranscriptTurnConfig()), chat=ChatConfig(),
        batching=BatchingConfig(early_first_fragment=True), barge_in=BargeInConfig(),
        typed_language="en",
    )  # fmt: skip


def test_a_setting_feeds_its_bundle_field() -> None:
    built = conversation_settings(
        resolve(["--min_silence_ms", "300", "--chat_size", "4", "--stream_batch_sentences", "2",
                 "--watchdog_s", "12", "--live_transcription_update_interval", "0.25"],
                environ={})
    )  # fmt: skip
    assert (built.vad.min_silence_ms, built.chat.chat_size) == (300, 4)
    assert (built.batching.sentences_per_batch, built.watchdog_s) == (2, 12)
    assert built.vad.partial_interval_ms == 250
    quiet = conversation_settings(resolve(["--enable_live_transcription", "false"], environ={}))
    assert quiet.vad.partial_interval_ms == 0 and quiet.live_transcription is False
