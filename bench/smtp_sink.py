"""An SMTP sink in its own process (aiosmtpd) that records each received Message-ID.

``python -m bench.smtp_sink --port P --out FILE [--delay-ms N]`` appends one line per
received message (``<unix time> <Message-ID>``) to FILE, prints ``READY`` once listening,
and stops on SIGTERM. Used by B4 and by the worker crash test.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, out: Path, delay: float) -> None:
        self.file = out.open("a", buffering=1)
        self.delay = delay
        self.parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = self.parser.parsebytes(envelope.content)
        self.file.write(f"{time.time():.6f} {headers.get('Message-ID', '-')}\n")
        return "250 OK"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    recorder = Recorder(args.out, args.delay_ms / 1000)
    controller = Controller(recorder, hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("READY", flush=True)
    while not stop:
        time.sleep(0.1)
    controller.stop()
    recorder.file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
