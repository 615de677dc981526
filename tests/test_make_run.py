"""`make run PORT=5050` serves on that port and the site's own links say that port too."""

from __future__ import annotations

import subprocess
import time
from contextlib import suppress

import pytest
import requests
from live_server import REPO_ROOT, app_env, free_port, migrate, stop_process_group
from tests_support import throwaway_database

START_TIMEOUT_S = 30


def run_command_line(port: int, **env: str) -> str:
    """The command `make run` would run to serve (make -n prints it without running anything)."""
    result = subprocess.run(
        ["make", "-n", "-s", "run", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=REPO_ROOT,
        env={**app_env("sqlite://"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = [x for x in result.stdout.splitlines() if " run --host " in x]
    return line


def operator_chose_site_url_locally() -> bool:
    local = REPO_ROOT / "instance" / "config.py"
    return local.exists() and any(x.startswith("SITE_URL") for x in local.read_text().splitlines())


@pytest.mark.slow
def test_make_run_on_another_port_links_to_that_port(database_url):
    if operator_chose_site_url_locally():
        pytest.skip("this checkout's instance/config.py sets SITE_URL, which make run respects")
    port = free_port()
    line = run_command_line(port)
    assert line.startswith(f"MICROSITE_SITE_URL=http://127.0.0.1:{port} ")
    with throwaway_database(database_url) as url:
        migrate(url)
        server = subprocess.Popen(
            ["sh", "-c", line],
            cwd=REPO_ROOT,
            env=app_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT_S
            home = None
            while home is None and time.monotonic() < deadline:
                assert server.poll() is None, "flask run exited"
                with suppress(requests.RequestException):
                    home = requests.get(base + "/", timeout=2)
                time.sleep(0.2)
            assert home is not None, f"nothing answered on port {port}"
            assert f'<link rel="canonical" href="{base}/">' in home.text
            sitemap = requests.get(base + "/sitemap.xml", timeout=5).text
            assert f"<loc>{base}/faq</loc>" in sitemap
            assert ":5000" not in sitemap
        finally:
            stop_process_group(server)


def test_a_site_url_the_operator_set_is_not_overridden():
    line = run_command_line(5050, MICROSITE_SITE_URL="https://www.bluewater-psychiatry.example")
    assert "MICROSITE_SITE_URL=http://" not in line
    assert "--port 5050" in line
