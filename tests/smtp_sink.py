"""A real SMTP server (aiosmtpd) that stores every message it accepts, for tests.

    python smtp_sink.py --port N --dir DIR

Each accepted message is written to its own file DIR/<start-time>-<n>.eml (a restarted sink never
overwrites an earlier one, and duplicates stay visible); the process runs until terminated. Used by the accounts integration tests and scripts/fault-test.
"""
import argparse
import asyncio
import itertools
import os
import signal
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        self.prefix = time.time_ns()

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = os.path.join(self.directory, f".{self.prefix}-{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, f"{self.prefix}-{n}.eml"))
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Store(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"smtp sink on 127.0.0.1:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
