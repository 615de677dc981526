"""Liveness and readiness endpoints."""


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_ok_when_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["checks"]["database"] == {"ok": True}


def test_readyz_is_503_when_database_is_unreachable(app_config):
    from microsite import create_app

    app_config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    app_config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 1}}
    client = create_app(app_config).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
