"""Serve the API with uvicorn in a thread of the node's process."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import uvicorn

from gateway.api.body_limit import Asgi
from gateway.config import ApiConfig
from gateway.model.codes import Fault
from gateway.model.errors import ConfigError

log = logging.getLogger(__name__)


class ApiServer:
    """The API on the address of ``[api]``, started and stopped with the node."""

    def __init__(self, app: Asgi, config: ApiConfig) -> None:
        config.check()
        host, port = config.host_port
        options: dict[str, object] = {}
        if config.unix_socket is not None:
            options["uds"] = str(config.unix_socket)
        else:
            options |= {"host": host, "port": port}
        if config.tls_cert_file is not None:
            options |= {
                "ssl_certfile": str(config.tls_cert_file),
                "ssl_keyfile": str(config.tls_key_file),
            }
        self.config = config
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,  # a URL can name a request; the node's own log says enough
                server_header=False,
                lifespan="off",
                **options,  # type: ignore[arg-type]
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    def start(self, wait: float = 15.0) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"The API could not listen on {self.address} (in use, or not allowed).",
                    code=Fault.API_LISTEN,
                )
            time.sleep(0.05)
        if self.config.unix_socket is not None:
            Path(self.config.unix_socket).chmod(0o660)
        log.info("API listening on %s", self.address)
        return self

    @property
    def address(self) -> str:
        """``http(s)://host:port`` (the port actually bound) or ``unix:PATH``."""
        if self.config.unix_socket is not None:
            return f"unix:{self.config.unix_socket}"
        host, port = self.config.host_port
        if self._server.started and self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
