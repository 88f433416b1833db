"""moto's server, handling one request at a time.

DynamoDB applies each conditional write and transaction atomically. moto checks conditions
and writes in plain Python on concurrent threads, so two racing writes can both pass a
condition that only one should. Serializing requests restores DynamoDB's guarantee, so the
concurrency tests measure our code, not moto's races. Connections stay concurrent (threaded);
only the handling of each request holds the lock.
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # moto builds whole responses, so the body is complete before the lock is released.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
