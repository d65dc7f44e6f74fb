"""A private, real Asterisk: for the tests, the benchmarks and ``hotline serve --demo``.

Found through ``HOTLINE_ASTERISK`` (a bundle directory such as ``../shared/asterisk``, or
an ``asterisk`` binary), then ``asterisk`` on ``PATH``, then ``../shared/asterisk`` next
to the project. Under ``CI=true`` a missing Asterisk is an error, never a skip.

Each sandbox lives in its own directory (configuration, logs, CDR, queue_log, control
socket) with its own AMI port, runs the dialplan and queues ``hotline dialplan``
generates, and simulates people with Local channels:

- a citizen is ``Local/<caller>*<number>@pstn``: the ``;2`` side sets the caller id
  and enters ``from-trunk`` (which includes ``hotline-incoming``), exactly where a
  trunk's channel would; the ``;1`` side runs ``Wait(<stay>)``, i.e. the citizen
  hangs up after ``stay`` seconds;
- an agent or expert phone is ``Local/<ext>@agents``: answers and talks for the
  global ``TALK_<ext>`` (else ``TALK``) seconds, then hangs up;
- a sub-centre is ``Local/answer|ringout|busy|congest@subcenters``.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hotline.config import PROJECT_ROOT, Settings

BUNDLE = PROJECT_ROOT.parent / "shared" / "asterisk"


class AsteriskMissing(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class AsteriskInstall:
    binary: Path
    moddir: Path
    datadir: Path
    etc_template: Path | None  # a minimal configuration to start from (the bundle's etc-minimal)


def _bundle(path: Path) -> AsteriskInstall | None:
    if (path / "bin" / "asterisk").exists() and (path / "modules").is_dir():
        etc = path / "etc-minimal"
        return AsteriskInstall(path / "bin" / "asterisk", path / "modules", path / "data",
                               etc if etc.is_dir() else None)
    return None


def find_asterisk() -> AsteriskInstall:
    """The Asterisk to test against (see the module docstring for the order)."""
    configured = os.environ.get("HOTLINE_ASTERISK")
    if configured:
        path = Path(configured)
        found = _bundle(path) or (_bundle(path.parent.parent) if path.is_file() else None)
        if found is None and path.is_file():
            found = AsteriskInstall(path, Path("/usr/lib/asterisk/modules"), Path("/usr/share/asterisk"), None)
        if found is None:
            raise AsteriskMissing(f"HOTLINE_ASTERISK={configured!r} is neither an Asterisk bundle nor a binary")
        return found
    on_path = shutil.which("asterisk")
    if on_path:
        real = Path(on_path).resolve()
        return _bundle(real.parent.parent) or AsteriskInstall(
            real, Path("/usr/lib/asterisk/modules"), Path("/usr/share/asterisk"), None)
    found = _bundle(BUNDLE)
    if found is None:
        raise AsteriskMissing(f"no Asterisk: set HOTLINE_ASTERISK, put asterisk on PATH, or provide {BUNDLE}")
    return found


def host_timezone() -> str:
    """The IANA name of this host's zone (/etc/localtime's target, /etc/timezone), else UTC."""
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        return target.split("/zoneinfo/", 1)[1]
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port for a server to listen on later, chosen below the kernel's ephemeral
    range: a port the kernel hands out for ``bind(0)`` or an outgoing connection (a
    FastAGI server started on port 0 in the meantime, say) can then never take it
    between this check and the server's own bind."""
    low, _ = _ephemeral_range()
    top = max(low - 1, 2048)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, top - 12000), top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded host: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: modules a hotline PBX needs (codec_gsm/format_gsm are left out on purpose: the
#: bundled build of codec_gsm.so dies with SIGILL on some CPUs, and nothing here uses GSM)
MODULES = """[modules]
autoload = no
load = res_agi.so
load = pbx_config.so
load = app_queue.so
load = app_dial.so
load = app_stack.so
load = app_playback.so
load = app_exec.so
load = func_channel.so
load = func_logic.so
load = func_cut.so
load = func_callerid.so
load = func_strings.so
load = func_global.so
load = func_math.so
load = func_cdr.so
load = cdr_csv.so
load = app_mixmonitor.so
load = app_confbridge.so
load = bridge_simple.so
load = bridge_softmix.so
load = bridge_native_rtp.so
load = bridge_holding.so
load = res_musiconhold.so
load = res_timing_timerfd.so
load = format_wav.so
load = format_pcm.so
load = codec_ulaw.so
load = codec_alaw.so
load = res_manager_devicestate.so
load = app_originate.so
load = app_chanspy.so
load = app_senddtmf.so
load = app_read.so
load = app_verbose.so
load = app_echo.so
load = app_milliwatt.so
load = app_playtones.so
load = res_clioriginate.so
load = res_speech.so
load = app_cdr.so
load = func_uri.so
load = app_transfer.so
load = app_bridgewait.so
"""

PEOPLE_CONTEXTS = """
; ---- people, simulated with Local channels (hotline/telephony/sandbox.py) ----
[from-trunk]
include => hotline-incoming

; Local/<caller>*<number>@pstn: the ;2 side is the citizen's trunk channel
[pstn]
exten => _X.,1,Set(CALLERID(num)=${CUT(EXTEN,*,1)})
 same => n,Goto(from-trunk,${CUT(EXTEN,*,2)},1)

; an agent or expert phone: answers, talks TALK_<ext> (else TALK) seconds, hangs up;
; with the global MEDIA = 1 it sends audio while it talks (a 1004 Hz tone, 20 ms frames)
[agents]
exten => _X.,1,Answer()
 same => n,Set(T=${GLOBAL(TALK_${EXTEN})})
 same => n,ExecIf($["${GLOBAL(MEDIA)}" = "1"]?Playtones(1004))
 same => n,Wait(${IF($[${LEN(${T})} > 0]?${T}:${GLOBAL(TALK)})})
 same => n,Hangup()

; sub-centres that answer, never answer, are busy, are congested
[subcenters]
exten => answer,1,Answer()
 same => n,Wait(${GLOBAL(SUBCENTER_TALK)})
 same => n,Hangup()
exten => ringout,1,Ringing()
 same => n,Wait(600)
exten => busy,1,Busy(10)
exten => congest,1,Congestion(10)
"""


@dataclass
class AsteriskSandbox:
    root: Path
    install: AsteriskInstall = field(default_factory=find_asterisk)
    ami_port: int = field(default_factory=free_port)
    ami_username: str = "hotline"
    ami_secret: str = field(default_factory=lambda: secrets.token_hex(12))
    talk_seconds: int = 5
    media: bool = False  # phones send a tone while they talk (the global MEDIA, kept over a dialplan reload)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def tz(self) -> str:
        """The zone Master.csv times are written in (``usegmtime = no``): the host's.
        Asterisk reads /etc/localtime and ignores ``TZ`` in its environment."""
        return host_timezone()

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def hotline_dir(self) -> Path:
        return self.etc / "hotline"

    @property
    def cdr_csv(self) -> Path:
        return self.root / "log" / "cdr-csv" / "Master.csv"

    @property
    def queue_log(self) -> Path:
        return self.root / "log" / "queue_log"

    @property
    def messages(self) -> Path:
        return self.root / "log" / "messages.log"

    def init(self) -> None:
        for sub in ("etc/hotline", "lib", "db", "keys", "agi-bin", "spool", "run", "log/cdr-csv"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if self.install.etc_template is not None:
            for conf in self.install.etc_template.glob("*.conf"):
                shutil.copy(conf, self.etc / conf.name)
        r = self.root
        (self.etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {r}/etc\nastmoddir => {self.install.moddir}\nastdatadir => {self.install.datadir}\n"
            f"astvarlibdir => {r}/lib\nastdbdir => {r}/db\nastkeydir => {r}/keys\nastagidir => {r}/agi-bin\n"
            f"astspooldir => {r}/spool\nastrundir => {r}/run\nastlogdir => {r}/log\n"
            "[options]\nnocolor = yes\n"
        )
        (self.etc / "modules.conf").write_text(MODULES)
        (self.etc / "logger.conf").write_text(
            "[general]\nqueue_log = yes\n[logfiles]\nmessages.log => notice,warning,error,verbose\n")
        (self.etc / "cdr.conf").write_text(
            "[general]\nenable = yes\n[csv]\nusegmtime = no\nloguniqueid = yes\nloguserfield = yes\n"
            "accountlogs = no\nnewcdrcolumns = yes\n")
        (self.etc / "manager.conf").write_text(
            f"[general]\nenabled = yes\nport = {self.ami_port}\nbindaddr = 127.0.0.1\ntimestampevents = yes\n\n"
            f"[{self.ami_username}]\nsecret = {self.ami_secret}\ndeny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\n"
            # what docs/ASTERISK.md tells an operator to give the backend's AMI user (system
            # too, so the telephony service may ask for its events with Filter), no more:
            # the suite proves that list is enough
            "read = call,agent,system\nwrite = call,agent,originate,system\n")
        # members are the backend's to add: after a restart Asterisk starts with none
        (self.etc / "queues.conf").write_text("[general]\npersistentmembers = no\n#include hotline/queues_hotline.conf\n")
        (self.etc / "extensions.conf").write_text(
            "[general]\nstatic = yes\nwriteprotect = no\n\n[globals]\n"
            f"TALK = {self.talk_seconds}\nSUBCENTER_TALK = 3\nMEDIA = {int(self.media)}\n\n"
            "#include hotline/extensions_hotline.conf\n" + PEOPLE_CONTEXTS)
        for name in ("extensions_hotline.conf", "queues_hotline.conf"):
            target = self.hotline_dir / name
            if not target.exists():
                target.write_text("")

    def wire(self, settings: Settings, **sections: dict[str, Any]) -> Settings:
        """``settings`` pointed at this PBX: its AMI account (``[calls]``) and its Master.csv
        and queue_log (``[ingest]``), plus any further ``section={key: value}`` overrides."""
        extra = {k: dict(v) for k, v in settings.extra.items()}
        extra.setdefault("calls", {}).update(
            ami_host="127.0.0.1", ami_port=self.ami_port, ami_username=self.ami_username, ami_secret=self.ami_secret)
        extra.setdefault("ingest", {}).update(
            cdr_csv=str(self.cdr_csv), queue_log=str(self.queue_log), cdr_timezone=self.tz)
        for section, values in sections.items():
            extra.setdefault(section, {}).update(values)
        return replace(settings, extra=extra)

    def write_hotline(self, extensions: str, queues: str) -> None:
        (self.hotline_dir / "extensions_hotline.conf").write_text(extensions, encoding="utf-8")
        (self.hotline_dir / "queues_hotline.conf").write_text(queues, encoding="utf-8")

    def _cmd(self, *args: str) -> list[str]:
        return [str(self.install.binary), "-C", str(self.etc / "asterisk.conf"), *args]

    def _stop_leftover(self) -> None:
        """An Asterisk a killed run left in this directory is stopped before a new one starts."""
        pid_file = self.root / "run" / "asterisk.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return
        subprocess.run(self._cmd("-rx", "core stop now"), capture_output=True, timeout=10)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)

    def start(self, timeout: float = 15.0) -> None:
        self._stop_leftover()
        log = (self.root / "log" / "console.log").open("ab")
        self._proc = subprocess.Popen(self._cmd("-f", "-n"), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Asterisk exited with {self._proc.returncode}; see {self.root}/log")
            done = subprocess.run(self._cmd("-rx", "core waitfullybooted"), capture_output=True, timeout=10)
            if done.returncode == 0 and b"fully booted" in done.stdout.lower():
                self._check_ami()
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Asterisk did not boot within {timeout} s; see {self.root}/log")

    def _check_ami(self) -> None:
        """The AMI port answers with Asterisk's banner (and not another server that took
        the port first: then Asterisk logs a bind error and runs without AMI)."""
        try:
            with socket.create_connection(("127.0.0.1", self.ami_port), timeout=5) as conn:
                banner = conn.recv(64)
        except OSError as exc:
            banner = repr(exc).encode()
        if not banner.startswith(b"Asterisk Call Manager"):
            self.stop()
            raise RuntimeError(f"Asterisk's AMI is not on 127.0.0.1:{self.ami_port} (got {banner[:40]!r}); "
                               f"is the port taken by another process? see {self.root}/log")

    def rx(self, command: str) -> str:
        done = subprocess.run(self._cmd("-rx", command), capture_output=True, timeout=20)
        return done.stdout.decode("utf-8", "replace")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            subprocess.run(self._cmd("-rx", "core stop now"), capture_output=True, timeout=10)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_mark(self) -> int:
        return self.messages.stat().st_size if self.messages.exists() else 0

    def problems_since(self, mark: int) -> list[str]:
        """WARNING and ERROR lines the CLI log got since ``mark``."""
        with self.messages.open("rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if re.search(r"\] (WARNING|ERROR)\[", line)]

    def reload(self) -> list[str]:
        """``dialplan reload`` and ``queue reload all``; returns the warnings and errors they logged."""
        mark = self.log_mark()
        self.rx("dialplan reload")
        self.rx("queue reload all")
        return self.problems_since(mark)

    def call(self, line: str, caller: str = "13800138000", *, stay: float = 20) -> None:
        """A citizen dials ``line`` and hangs up after ``stay`` seconds (unless Asterisk ends it)."""
        self.rx(f"channel originate Local/{caller}*{line}@pstn application Wait {stay}")

    def queue_members(self, queue: str) -> dict[str, str]:
        """``queue show``: member interface → its status text (e.g. ``paused:用餐``, ``Not in use``)."""
        members: dict[str, str] = {}
        for raw in self.rx(f"queue show {queue}").splitlines():
            m = re.match(r"\s+(?:\S.*?\()?(Local/\S+?|[A-Z]+/\S+?)[\s)]", raw)
            if not m or "Callers" in raw:
                continue
            paused = re.search(r"\(paused(?::(.*?))?(?: was \d+ secs? ago)?\)", raw)
            if paused is None:
                members[m.group(1)] = "member"
            else:
                members[m.group(1)] = f"paused:{paused.group(1)}" if paused.group(1) else "paused"
        return members

    def channels(self) -> list[str]:
        out = self.rx("core show channels concise")
        return [line.split("!", 1)[0] for line in out.splitlines() if "!" in line]
