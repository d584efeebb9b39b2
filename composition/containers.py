"""dependency-injector containers: core (logging), adapters (one container; each stage's
provider selects the adapter its flag names, from the tables in `composition.stages`), and the
application, which receives the adapters as a `DependenciesContainer` so tests can hand it
fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers

from application.conversation import Conversation
from application.settings import ConversationSettings
from composition import stages
from composition.backends import NO_END_OF_TURN_MODEL
from composition.config import known_secrets
from composition.logging_setup import configure_logging
from composition.settings import BUNDLES, bundle_fields
from composition.stage_settings import audio_settings, llm_settings, stt_settings, tts_settings
from ports import AudioDuplex, Console, TextToSpeech

# The stages in the order they open, each with what its progress line calls it: the audio
# devices or files first, checked without a progress line (a wrong one fails at once), then the
# models, the language model first (a missing key or server fails before seconds go into the
# others). They close in the reverse order.
STAGES = (("audio", None), ("llm", "language model"), ("vad", "voice activity"),
          ("end_of_turn", "end-of-turn model"), ("stt", "speech-to-text"),
          ("tts", "text-to-speech"))  # fmt: skip


def conversation_settings(config: Mapping[str, Any]) -> ConversationSettings:
    """The conversation's validated bundles, from the settings declared to feed them. Built by
    the CLI before any model loads, so an impossible combination is refused at once."""
    fields = bundle_fields(config)
    top = fields.pop("")
    parts = {key: BUNDLES[key](**kwargs) for key, kwargs in fields.items()}
    return ConversationSettings(**parts, **top)


class Core(containers.DeclarativeContainer):
    config = providers.Configuration()
    logging = providers.Resource(
        configure_logging,
        level=config.log_level,
        log_format=config.log_format,
        secrets=providers.Callable(known_secrets, config),
    )


def adapter_selector(
    key: Any,
    builders: Mapping[str, stages.Builder],
    settings: Any,
    warm: bool,
    none: tuple[str, ...] = (),
    loads_nothing: Mapping[str, providers.Provider[Any]] | None = None,
) -> providers.Selector[Any]:
    """A provider that opens, on first use, the one adapter `key` names, built from the stage's
    `settings`: a `Resource`, so it is opened once (and warmed up, for a model) and closed on
    shutdown. `none` names the choices that need no adapter (the stage gets None), and
    `loads_nothing` those met by an object with nothing to open or close (no progress line)."""
    options: dict[str, providers.Provider[Any]] = {
        name: providers.Resource(stages.warmed, build, settings) if warm
        else providers.Resource(build, settings)
        for name, build in builders.items()
    }  # fmt: skip
    for name in none:
        options[name] = providers.Object(None)
    options.update(loads_nothing or {})
    return providers.Selector(key, **options)


class Adapters(containers.DeclarativeContainer):
    """Every stage's adapter, chosen by its flag. Nothing loads until a provider is called."""

    config = providers.Configuration()
    secrets = providers.Callable(known_secrets, config)

    clock = providers.Singleton(stages.clock)
    console = providers.Singleton(stages.console, config.text)
    metrics = providers.Singleton(stages.metrics, config.metrics_jsonl, secrets)
    audio = adapter_selector(
        providers.Callable(stages.audio_source, config), stages.AUDIO_BUILDERS,
        providers.Callable(audio_settings, config), False,
    )  # fmt: skip
    unheard = providers.Singleton(stages.unheard)  # the ears of typed turns
    vad = adapter_selector(
        providers.Callable(stages.hearing, config.text, "silero"), stages.VAD_BUILDERS, config,
        True, loads_nothing={stages.UNHEARD: unheard},
    )  # fmt: skip
    end_of_turn = adapter_selector(
        providers.Callable(stages.hearing, config.text, config.turn_detection),
        stages.END_OF_TURN_BUILDERS, config, True, none=(*NO_END_OF_TURN_MODEL, stages.UNHEARD),
    )  # fmt: skip
    stt = adapter_selector(
        providers.Callable(stages.hearing, config.text, config.stt), stages.STT_BUILDERS,
        providers.Callable(stt_settings, config), True, loads_nothing={stages.UNHEARD: unheard},
    )  # fmt: skip
    tools = providers.Singleton(stages.toolbox, config.tools, config.tools_module)
    llm = adapter_selector(
        config.llm_backend, stages.LLM_BUILDERS,
        providers.Callable(llm_settings, config, tools), True,
    )  # fmt: skip
    tts = adapter_selector(
        providers.Callable(stages.voice, config),
        stages.TTS_BUILDERS, providers.Callable(tts_settings, config), True,
        loads_nothing={stages.UNSPOKEN: providers.Singleton(stages.unspoken)},
    )  # fmt: skip


class SessionAdapters(containers.DeclarativeContainer):
    """One Realtime session's adapters: the client's audio, console and voice, a VAD of its own
    (it keeps state), and the models every session shares (`shared`: the opened `Adapters`)."""

    shared = providers.DependenciesContainer()
    audio: providers.Dependency[AudioDuplex] = providers.Dependency()
    console: providers.Dependency[Console] = providers.Dependency()
    tts: providers.Dependency[TextToSpeech] = providers.Dependency()
    vad = providers.Singleton(stages.session_vad)
    end_of_turn = shared.end_of_turn
    stt = shared.stt
    llm = shared.llm
    clock = shared.clock
    metrics = shared.metrics
    tools = shared.tools


def opened_resource(adapters: containers.Container, name: str) -> providers.Resource[Any] | None:
    """The Resource behind a stage's selector: the one adapter its flag chose (None: the choice
    needs no adapter)."""
    selector = getattr(adapters, name)
    resource = selector.providers[selector.selector()]
    return resource if isinstance(resource, providers.Resource) else None


class Application(containers.DeclarativeContainer):
    config = providers.Configuration()
    adapters = providers.DependenciesContainer()

    settings = providers.Singleton(conversation_settings, config)
    conversation = providers.Singleton(
        Conversation,
        audio=adapters.audio,
        vad=adapters.vad,
        stt=adapters.stt,
        llm=adapters.llm,
        tts=adapters.tts,
        end_of_turn=adapters.end_of_turn,
        console=adapters.console,
        clock=adapters.clock,
        metrics=adapters.metrics,
        tools=adapters.tools,
        settings=settings,
    )


def build_agent(config: Mapping[str, Any], adapters: containers.Container) -> Application:
    """The application wired to the adapters (or to fakes, in tests), its dependencies checked."""
    agent = Application(config=config, adapters=adapters)
    agent.check_dependencies()
    return agent
