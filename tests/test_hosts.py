"""Only configured hosts are answered, and no link or redirect is built from the Host header."""

from __future__ import annotations

import pytest

from microsite import create_app


@pytest.mark.parametrize("path", ["/", "/book", "/book/", "/api/slots?type=1", "/sitemap.xml"])
def test_an_unknown_host_gets_400_and_no_redirect(client, path):
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "evil.example" not in response.get_data(as_text=True)


def test_a_post_to_an_unknown_host_is_refused_before_anything_else(client):
    response = client.post("/book/details", data={}, headers={"Host": "evil.example:8080"})
    assert response.status_code == 400
    assert "unknown host" in response.get_data(as_text=True)


def test_redirects_are_relative_even_for_a_trusted_alias(app_config):
    app_config["TRUSTED_HOSTS"] = ["localhost", "alias.example"]
    client = create_app(app_config).test_client()
    for host in ("localhost", "alias.example"):
        response = client.get("/book", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/book/"


def test_absolute_links_come_from_site_url_not_the_host(app_config):
    app_config.update(
        {"TRUSTED_HOSTS": ["localhost", "alias.example"], "SITE_URL": "https://bluewater.example"}
    )
    client = create_app(app_config).test_client()
    sitemap = client.get("/sitemap.xml", headers={"Host": "alias.example"}).get_data(as_text=True)
    assert "https://bluewater.example/" in sitemap
    assert "alias.example" not in sitemap


def test_by_default_only_the_site_url_host_is_trusted(app_config):
    app_config.pop("TRUSTED_HOSTS")
    app_config["SITE_URL"] = "https://book.bluewater.example"
    app = create_app(app_config)
    assert app.config["TRUSTED_HOSTS"] == ["book.bluewater.example"]
    client = app.test_client()
    assert client.get("/", headers={"Host": "book.bluewater.example"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 400
