from __future__ import annotations

from typing import Any


def test_create_and_get_app(client: Any, server: Any) -> None:
    created = client.create_app(CreateApplicationRequest={"Name": "smoke"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    app = created["ApplicationResponse"]
    assert app["Arn"] == f"arn:aws:mobiletargeting:eu-west-1:000000000000:apps/{app['Id']}"
    assert client.get_app(ApplicationId=app["Id"])["ApplicationResponse"]["Name"] == "smoke"
    store = server.run(lambda services: _dialect(services))
    assert store in ("sqlite", "postgresql")


async def _dialect(services: Any) -> str:
    return services.db.dialect.name
