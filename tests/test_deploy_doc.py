"""docs/deploy.md is run, not just read: its marked blocks are executed or checked here.

A block follows a marker `<!-- deploy-test: run | cron | unit NAME | nginx -->`. The server's
paths in it (/srv/bluewater, /etc/bluewater/env, the certificates, the ports) are replaced by
this test's own; nothing else is changed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup
from live_server import (
    REPO_ROOT,
    SECRET_KEY,
    LiveServer,
    free_port,
    migrate,
    run_flask,
    stop_process_group,
)
from tests_support import throwaway_database

from microsite.config import DEFAULTS

DOC = REPO_ROOT / "docs" / "deploy.md"
BLOCK_RE = re.compile(r"<!-- deploy-test: (\w+) ?([^>]*?) -->\n```\w*\n(.*?)```", re.S)
FLASK_COMMAND_RE = re.compile(r"flask --app microsite ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
# Commands the doc names that other branches build. INTEGRATOR: once merged, remove each from
# here; the test below then runs or checks it like the others (and fails if you forget).
PENDING_COMMANDS: set[str] = set()
HOST_NAME = "www.bluewater-psychiatry.example"
PROCESS_TIMEOUT_S = 60


def doc_text() -> str:
    return DOC.read_text()


def blocks(kind: str) -> list[tuple[str, str]]:
    found = [(arg, body) for k, arg, body in BLOCK_RE.findall(doc_text()) if k == kind]
    assert found, f"docs/deploy.md has no '{kind}' block for the tests"
    return found


def pending(command: str) -> bool:
    return any(command == p or command.startswith(p + " ") for p in PENDING_COMMANDS)


def clean_environment() -> dict[str, str]:
    """The machine's environment without any MICROSITE_ setting: the env file must say it all."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MICROSITE_")}


def write_env_file(path: Path, database_uri: str) -> Path:
    path.write_text(
        f"MICROSITE_SECRET_KEY={SECRET_KEY}\n"
        f"MICROSITE_SQLALCHEMY_DATABASE_URI={database_uri}\n"
        f"MICROSITE_SITE_URL=https://{HOST_NAME}\n"
        "MICROSITE_PROXY_FIX_X_FOR=1\n"
        "MICROSITE_PROXY_FIX_X_PROTO=1\n"
        "MICROSITE_RETENTION_DAYS=3650\n"
        f'MICROSITE_TRUSTED_HOSTS=\'["{HOST_NAME}","127.0.0.1"]\'\n'
    )
    path.chmod(0o600)
    return path


def env_file_values(path: Path) -> dict[str, str]:
    """The variables an env file sets, unquoted as `sh` and systemd's EnvironmentFile do."""
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        values[name] = shlex.split(value)[0] if value else ""
    return values


def localise(text: str, env_file: Path) -> str:
    # Backups go beside the env file: a fresh folder each run, never into the checkout.
    return (
        text.replace("/etc/bluewater/env", str(env_file))
        .replace("/srv/bluewater", str(REPO_ROOT))
        .replace("/var/backups/bluewater", str(env_file.parent / "backups"))
    )


def test_every_setting_is_in_the_environment_table():
    text = doc_text()
    missing = [
        name
        for name in DEFAULTS
        if f"`MICROSITE_{name}`" not in text
        and not (name.startswith("CLINIC_") and f"`_{name.removeprefix('CLINIC_')}`" in text)
    ]
    assert missing == [], "add these settings to docs/deploy.md's table"


def test_every_command_the_doc_names_exists(app):
    group = FlaskGroup(create_app=lambda: app)
    runner = CliRunner()
    commands = set(FLASK_COMMAND_RE.findall(doc_text()))
    assert {"db upgrade", "retention purge", "patient export", "patient erase"} <= commands
    for command in sorted(commands):
        words = command.split()
        # `backup PATH`: a lowercase second word may be an argument, not a subcommand.
        result = runner.invoke(group, [*words, "--help"])
        if result.exit_code != 0 and len(words) == 2:
            words = words[:1]
            result = runner.invoke(group, [*words, "--help"])
        if pending(command):
            assert result.exit_code != 0, (
                f"`{command}` exists now: remove it from PENDING_COMMANDS so the doc is checked"
            )
        else:
            assert result.exit_code == 0, f"`flask --app microsite {command}`: {result.output}"


@pytest.mark.slow
def test_the_database_steps_run_as_written(database_url, tmp_path):
    [(_, script)] = blocks("run")
    with throwaway_database(database_url) as url:
        env_file = write_env_file(tmp_path / "env", url)
        result = subprocess.run(
            ["sh", "-e", "-c", localise(script, env_file)],
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_S * 2,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(head)" in result.stdout  # db current: the database is at the newest migration
    assert "Dry run: 0 booking(s)" in result.stdout


def cron_entries() -> list[tuple[str, str, str]]:
    """(schedule, user, command) of each job line of the cron block."""
    [(_, body)] = blocks("cron")
    entries = []
    for line in body.splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, f"not a /etc/cron.d line (5 times, user, command): {line}"
        for field in fields[:5]:
            assert re.fullmatch(r"[*\d/,-]+", field), f"bad time field {field!r} in {line}"
        entries.append((" ".join(fields[:5]), fields[5], fields[6]))
    return entries


@pytest.mark.slow
def test_the_cron_jobs_run_as_written(database_url, tmp_path):
    entries = cron_entries()
    assert {user for _, user, _ in entries} == {"bluewater"}
    runnable = [c for _, _, c in entries if not pending(FLASK_COMMAND_RE.search(c).group(1))]
    assert any("retention purge" in c for c in runnable)
    with throwaway_database(database_url) as url:
        migrate(url)
        env_file = write_env_file(tmp_path / "env", url)
        for command in runnable:
            # cron turns \% into %; there is no journal here, so systemd-cat is left out.
            line = re.sub(r"systemd-cat -t \S+ ", "", localise(command, env_file))
            result = subprocess.run(
                ["sh", "-c", line.replace(r"\%", "%")],
                env=clean_environment(),
                capture_output=True,
                text=True,
                timeout=PROCESS_TIMEOUT_S,
                check=False,
            )
            assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
            if "retention purge" in line:
                assert "Erased the patient details of 0 booking(s)" in result.stdout
                # Outside tests the logs are JSON lines, one per event.
                assert '"event": "retention.purged"' in result.stderr, result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
@pytest.mark.parametrize("name", ["bluewater-web.service", "bluewater-outbox.service"])
def test_the_systemd_units_verify(tmp_path, name):
    units = dict(blocks("unit"))
    env_file = write_env_file(tmp_path / "env", "sqlite:///unused")
    unit = tmp_path / name
    unit.write_text(localise(units[name], env_file))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )
    # Lines about other units on this machine are not ours; ours must be silent and valid.
    ours = [line for line in result.stderr.splitlines() if name in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], result.stderr
    assert "-c gunicorn.conf.py" in units["bluewater-web.service"]
    assert "ExecReload=/bin/kill -s HUP $MAINPID" in units["bluewater-web.service"]


# --- nginx, for real, in front of gunicorn ---------------------------------------------------

BROTLI_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so")
needs_nginx = pytest.mark.skipif(
    not shutil.which("nginx"), reason="nginx is not installed (.ci/run installs it)"
)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={HOST_NAME}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    return cert, key


def nginx_config(folder: Path, *, app_port: int, http_port: int, https_port: int, brotli: bool):
    [(_, server_block)] = blocks("nginx")
    cert, key = self_signed_certificate(folder)
    block = server_block.replace("/srv/bluewater", str(REPO_ROOT))
    block = block.replace(f"/etc/letsencrypt/live/{HOST_NAME}/fullchain.pem", str(cert))
    block = block.replace(f"/etc/letsencrypt/live/{HOST_NAME}/privkey.pem", str(key))
    block = block.replace("/var/log/nginx/", f"{folder}/")
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{app_port}")
    block = re.sub(r"listen 80\b", f"listen 127.0.0.1:{http_port}", block)
    block = re.sub(r"listen 443\b", f"listen 127.0.0.1:{https_port}", block)
    if brotli:
        block = block.replace("#brotli", "brotli")
    config = folder / "nginx.conf"
    config.write_text(
        (f"load_module {BROTLI_MODULE};\n" if brotli else "")
        + f"user root;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        + f"error_log {folder}/error.log;\nevents {{}}\nhttp {{\n"
        + "include /etc/nginx/mime.types;\n"
        + "".join(
            f"{kind}_temp_path {folder}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + block
        + "\n}\n"
    )
    return config


@contextmanager
def nginx(config: Path):
    process = subprocess.Popen(
        ["nginx", "-c", str(config), "-p", str(config.parent), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process)


def curl(https_port: int, path: str, *args: str, host: str = HOST_NAME, scheme: str = "https"):
    """(status, headers as lowercase name -> [values]); curl speaks TLS with SNI, as browsers do."""
    result = subprocess.run(
        [
            *("curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-D", "-"),
            *("--resolve", f"{host}:{https_port}:127.0.0.1", *args),
            f"{scheme}://{host}:{https_port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        return result.returncode, {}
    lines = result.stdout.replace("\r", "").split("\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "nginx exited"
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.1)
    raise AssertionError(f"nginx did not listen on {port}")


@needs_nginx
@pytest.mark.parametrize("brotli", [False, True], ids=["gzip", "gzip-and-brotli"])
def test_the_nginx_block_passes_nginx_t(tmp_path, brotli):
    if brotli and not BROTLI_MODULE.exists():
        pytest.skip("libnginx-mod-http-brotli-filter is not installed (.ci/run installs it)")
    config = nginx_config(tmp_path, app_port=8000, http_port=80, https_port=443, brotli=brotli)
    result = subprocess.run(
        ["nginx", "-t", "-c", str(config), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@needs_nginx
@pytest.mark.slow
def test_nginx_in_front_of_gunicorn_behaves_as_the_doc_says(database_url, tmp_path):
    with throwaway_database(database_url) as url:
        migrate(url)
        env = {
            **clean_environment(),
            **env_file_values(write_env_file(tmp_path / "env", url)),
        }
        run_flask(["seed-demo"], env)
        with LiveServer(env, tmp_path / "gunicorn.log", workers=1) as server:
            http_port, https_port = free_port(), free_port()
            brotli = BROTLI_MODULE.exists()
            config = nginx_config(
                tmp_path,
                app_port=server.port,
                http_port=http_port,
                https_port=https_port,
                brotli=brotli,
            )
            with nginx(config) as process:
                wait_for_port(https_port, process)
                check_nginx_behaviour(http_port, https_port, brotli)


def check_nginx_behaviour(http_port: int, https_port: int, brotli: bool) -> None:
    status, headers = curl(https_port, "/faq", "-H", "Accept-Encoding: gzip")
    assert status == 200
    assert headers["strict-transport-security"] == ["max-age=63072000"]  # one, not two
    assert headers["content-encoding"] == ["gzip"]
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"][0])  # nginx's id, kept
    assert "server" not in headers or headers["server"] == ["nginx"]  # no version
    if brotli:
        assert curl(https_port, "/faq", "-H", "Accept-Encoding: br")[1]["content-encoding"] == [
            "br"
        ]

    # The app saw HTTPS through X-Forwarded-Proto: its cookie is Secure and __Host- named.
    status, headers = curl(https_port, "/book/details?type=1&slot=x")
    cookie = " ".join(headers.get("set-cookie", []))
    assert cookie.startswith("__Host-session="), headers
    assert "Secure" in cookie

    status, headers = curl(https_port, "/static/css/site.css", "-H", "Accept-Encoding: gzip")
    assert status == 200
    assert headers["cache-control"] == ["public, max-age=3600"]
    assert headers["strict-transport-security"] == ["max-age=63072000"]
    assert headers["content-encoding"] == ["gzip"]

    # A body over MAX_CONTENT_LENGTH is refused by nginx before gunicorn reads it.
    status, _ = curl(https_port, "/book/details", "--data-binary", "x" * (65 * 1024))
    assert status == 413

    status, headers = curl(http_port, "/faq", scheme="http")
    assert status == 301
    assert headers["location"] == [f"https://{HOST_NAME}/faq"]

    # Another host name gets no certificate at all (the TLS handshake is refused).
    failed, _ = curl(https_port, "/faq", host="other.example")
    assert failed != 0
