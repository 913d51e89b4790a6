"""API test fixtures: an app on the `engine` fixture (SQLite and PostgreSQL), users with
tokens per role, and a fake DeviceCommands."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, FakeCommands, role_tokens
from fastapi.testclient import TestClient

from camgrid.api.app import ApiContext, create_api
from camgrid.config import Settings


@pytest.fixture
def make_api(engine):
    def build(**ctx_kw: Any) -> Api:
        settings = ctx_kw.pop("settings", None) or Settings()
        ctx = ApiContext(engine=engine, settings=settings, **{"bus": None, "health": None, "commands": None,
                                                              "metrics": None, **ctx_kw})
        return Api(TestClient(create_api(ctx)), ctx)
    return build


@pytest.fixture
def users(engine) -> dict[str, str]:
    """One user per role (named after it), each with a live token."""
    return role_tokens(engine)


@pytest.fixture
def api(make_api, users) -> Api:
    a = make_api(commands=FakeCommands())
    a.tokens = users
    return a


