"""Runs the moto AWS emulator on a free loopback port for the tests.

Prints its URL (`http://127.0.0.1:PORT`) as the first line of stdout, then serves until its
stdin closes (so it dies with the test process that started it) or it is signalled.

Besides moto's own API (`POST /moto-api/reset`, ...) it answers `POST /_clock` with a JSON body
`{"now_ms": N}`: from then on moto's clock stands at N until set again. The port contract suites
run on a manual clock; this lets SQS visibility timeouts and delays follow it exactly. A message
becomes visible again when its visibility timeout has passed (moto waits one tick longer, which a
stopped clock never gives). Requests are served one at a time, so moto's read-check-write paths
(conditional updates) are atomic, as DynamoDB's are.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import threading

import moto.core.utils as moto_utils
import moto.sqs.models as sqs_models
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_frozen: datetime.datetime | None = None
_real_utcnow = moto_utils.utcnow


def _utcnow() -> datetime.datetime:
    return _frozen if _frozen is not None else _real_utcnow()


# `unix_time`/`unix_time_millis` (SQS visibility, delays, timestamps) look `utcnow` up in this
# module at call time, so replacing it here moves every service's clock.
moto_utils.utcnow = _utcnow
sqs_models.Message.visible = property(lambda self: moto_utils.unix_time_millis() >= self.visible_at)


def _set_clock(environ) -> bytes:
    global _frozen
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    _frozen = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=int(body["now_ms"]))
    return b"{}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/_clock" and environ.get("REQUEST_METHOD") == "POST":
            out = _set_clock(environ)
            start_response("200 OK", [("Content-Type", "application/json")])
            return [out]
        return moto_app(environ, start_response)

    server = make_server(args.host, args.port, app, threaded=False)
    print(f"http://{args.host}:{server.server_port}", flush=True)

    def exit_when_parent_goes() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
