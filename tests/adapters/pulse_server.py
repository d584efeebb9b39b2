"""A private PulseAudio daemon with a FIFO microphone and a FIFO speaker, for tests through a real
sound server (Debian packages in scripts/apt-packages.txt).

PortAudio reaches it through ALSA's "pulse" device (libasound2-plugins), which connects to
`PULSE_SERVER`. The microphone FIFO is fed in real time, with silence whenever no test audio is
pending (a pipe source that gets no data stalls PortAudio's capture, and `stop()` then hangs),
and never more than a block deep (the pipe source reads only while something records; a backlog
would reach the first recorder seconds late and make PortAudio's audio thread spin). `kill`
crashes the daemon, `start` brings it back. The speaker FIFO is drained continuously into
`heard`; with `echo`, what it played also comes back into the microphone through a simulated
room (open laptop speakers), on the sound server's own timing.
"""

from __future__ import annotations

import array
import fcntl
import os
import shutil
import signal
import subprocess
import termios
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.simulated_room import RoomSpec, SimulatedRoom
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE

_FORMAT = f"format=s16le rate={SAMPLE_RATE} channels=1"
_MAX_QUEUED_BYTES = BLOCK_BYTES  # in the microphone FIFO; see `_feed_mic`
# The speaker's audio waiting to be heard again (echo); beyond this, the oldest is dropped, so
# that a burst from the pipe sink cannot grow the echo's delay for good.
_MAX_ECHO_BYTES = 8 * BLOCK_BYTES


class PulseServer:
    def __init__(self, folder: Path, echo: RoomSpec | None = None) -> None:
        self.folder = folder
        self._room = None if echo is None else SimulatedRoom(echo)
        self._echo = bytearray()  # played by the speaker, not yet back in the microphone
        self.socket = folder / "native"
        self.mic_fifo = folder / "mic.fifo"
        self.speaker_fifo = folder / "speaker.fifo"
        self.server = f"unix:{self.socket}"
        self._pending: deque[bytes] = deque()
        self._heard = bytearray()
        self._heard_lock = threading.Lock()
        # When each queued block went into the microphone FIFO, and when each chunk the speaker
        # played arrived (with the byte count heard by then): what a simulated user times.
        self._said_at: list[float] = []
        self._heard_at: list[tuple[float, int]] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None

    def start(self) -> None:
        if shutil.which("pulseaudio") is None:
            raise RuntimeError(
                "pulseaudio is missing: apt-get install $(cat scripts/apt-packages.txt)"
            )
        config = self.folder / "server.pa"
        config.write_text(
            f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1\n"
            f"load-module module-pipe-source source_name=mic file={self.mic_fifo} {_FORMAT}\n"
            # Without the system clock the pipe sink runs as fast as its reader drains it.
            f"load-module module-pipe-sink sink_name=speaker file={self.speaker_fifo} {_FORMAT}"
            " use_system_clock_for_timing=yes\n"
            "set-default-source mic\n"
            "set-default-sink speaker\n"
        )
        # Everything the daemon writes (pid file, cookie, state) stays in the folder; as root
        # it warns that it is "not intended to be run as root" and runs anyway.
        env = {
            **os.environ,
            "HOME": str(self.folder),
            "XDG_RUNTIME_DIR": str(self.folder),
            "PULSE_RUNTIME_PATH": str(self.folder),
        }
        log = f"--log-target=file:{self.folder / 'pulseaudio.log'}"
        subprocess.run(
            ["pulseaudio", "-n", "-F", str(config), "--daemonize=yes", "--exit-idle-time=-1", log],
            env=env,
            check=True,
            timeout=30,
        )
        self._pid = int((self.folder / "pid").read_text())
        self._threads = [
            threading.Thread(target=self._feed_mic, name="pulse-mic", daemon=True),
            threading.Thread(target=self._drain_speaker, name="pulse-speaker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._pid is not None:
            os.kill(self._pid, signal.SIGTERM)
            _wait_gone(self._pid)
            self._pid = None
        for thread in self._threads:  # the speaker FIFO reads EOF once the daemon is gone
            thread.join(timeout=5)

    def kill(self) -> None:
        """The daemon dies at once (as when a sound server crashes); `start` brings it back."""
        self._stopping.set()
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            _wait_gone(self._pid)
            self._pid = None
        for thread in self._threads:  # the FIFOs break once the daemon is gone
            thread.join(timeout=5)
        self._stopping.clear()
        # What a dead daemon leaves behind; its pid may live on as a zombie nobody reaps,
        # which a new daemon would take for a running one.
        for leftover in (self.folder / "pid", self.socket):
            leftover.unlink(missing_ok=True)

    def say(self, pcm: bytes) -> None:
        """Queue audio for the microphone, played from the next 32 ms block on; `said_at` then
        tells when each of its blocks went in."""
        self._said_at = []
        for i in range(0, len(pcm), BLOCK_BYTES):
            self._pending.append(pcm[i : i + BLOCK_BYTES].ljust(BLOCK_BYTES, b"\0"))

    @property
    def saying(self) -> bool:
        return bool(self._pending)

    def heard(self, start: int = 0) -> bytes:
        """What the speaker played so far, from byte `start` on (a long run's whole is tens of
        megabytes: a listener that polls asks only for what is new)."""
        with self._heard_lock:
            return bytes(self._heard[start:])

    def said_at(self) -> list[float]:
        """The monotonic time each block of the last `say` went into the microphone FIFO."""
        return list(self._said_at)

    def heard_at(self, offset: int) -> float | None:
        """The monotonic time the speaker played byte `offset` of `heard()`: the arrival of the
        chunk holding it, less the audio after it in that chunk."""
        with self._heard_lock:
            arrivals = list(self._heard_at)
        for arrived, end in arrivals:
            if end > offset:
                return arrived - (end - offset) / (2 * SAMPLE_RATE)
        return None

    def _feed_mic(self) -> None:
        silence = bytes(BLOCK_BYTES)
        try:
            fd = os.open(self.mic_fifo, os.O_WRONLY)  # the daemon holds the reading end already
        except FileNotFoundError:  # the daemon is already gone (and removed its FIFO)
            return
        try:
            start = time.monotonic()
            blocks = 0
            while not self._stopping.is_set():
                # The pipe source reads the FIFO only while something records. Were it fed
                # regardless, the FIFO would fill (2 s), the writes block, and the first
                # recorder would get that backlog plus the feeder's catch-up burst: PortAudio's
                # capture then always has a period ready while its playback has no room, and
                # its ALSA thread polls in a loop (a core at 60-90 %). A microphone nobody
                # reads loses what it hears: skip the block, keep queued speech for later.
                if _queued_bytes(fd) < _MAX_QUEUED_BYTES:
                    if self._pending:  # noted before it leaves `_pending`: see `saying`
                        os.write(fd, self._with_echo(self._pending[0]))
                        self._said_at.append(time.monotonic())
                        self._pending.popleft()
                    else:
                        os.write(fd, self._with_echo(silence))
                else:
                    self._with_echo(silence)  # the room's time goes on, unheard
                blocks += 1
                time.sleep(max(0.0, start + blocks * BLOCK_SECONDS - time.monotonic()))
        except BrokenPipeError:  # the daemon went away first
            pass
        finally:
            os.close(fd)

    def _drain_speaker(self) -> None:
        fd = os.open(self.speaker_fifo, os.O_RDONLY)
        try:
            while chunk := os.read(fd, 65536):
                with self._heard_lock:
                    self._heard += chunk
                    self._heard_at.append((time.monotonic(), len(self._heard)))
                    if self._room is not None:
                        self._echo += chunk
                        del self._echo[: max(0, len(self._echo) - _MAX_ECHO_BYTES)]
        finally:
            os.close(fd)

    def _with_echo(self, block: bytes) -> bytes:
        """`block` plus the room's echo of what the speaker played (time goes on for the room
        whether or not the block reaches the pipe)."""
        if self._room is None:
            return block
        with self._heard_lock:
            played = bytes(self._echo[:BLOCK_BYTES]).ljust(BLOCK_BYTES, b"\0")
            del self._echo[:BLOCK_BYTES]
        heard = self._room.into_mic(block)
        self._room.play(played)
        return heard


def _queued_bytes(fd: int) -> int:
    """How many bytes wait in the pipe behind `fd` (either end)."""
    level = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, level)
    return level[0]


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    """Until the process is gone (or a zombie left for init to reap); SIGKILL after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@contextmanager
def serving(folder: Path, echo: RoomSpec | None = None) -> Iterator[PulseServer]:
    """A running server that PortAudio (and every child process) uses as its sound system,
    stopped and forgotten by PortAudio on the way out."""
    server = PulseServer(folder, echo=echo)
    previous = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server.server
    server.start()
    try:
        reinitialize_portaudio()
        yield server
    finally:
        server.stop()
        if previous is None:
            del os.environ["PULSE_SERVER"]
        else:
            os.environ["PULSE_SERVER"] = previous
        reinitialize_portaudio()


def reinitialize_portaudio() -> None:
    """PortAudio lists devices once, when initialised: have it look again now that the server
    is (or no longer is) there."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()
