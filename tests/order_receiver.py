"""A real HTTP receiver of order exports on loopback (an ERP, a warehouse), answering each POST
as a script says: ``200``, ``500`` (any code), or ``hang`` (no answer until the client gives
up). Like a real receiver, it dedupes on the idempotency keys: ``keys`` counts each order once
however often it was posted, ``posts`` counts every request."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from impexmod.delivery.signing import verify


@dataclass
class Post:
    """One request as the receiver got it."""

    headers: dict[str, str]
    body: bytes
    answered: int | str

    def order_keys(self) -> list[str]:
        """The idempotency keys of the orders in the body (XML attributes or JSON members)."""
        if self.headers.get("Content-Type", "").startswith("application/xml"):
            root = etree.fromstring(self.body, etree.XMLParser(resolve_entities=False))
            return [o.get("idempotency-key") for o in root.iter("order")]
        if self.headers.get("Content-Type") == "application/x-ndjson":
            return [json.loads(line)["idempotency_key"] for line in self.body.splitlines()]
        return [o["idempotency_key"] for o in json.loads(self.body)["orders"]]


@dataclass
class Receiver:
    """What the receiver got and how it will answer next."""

    url: str = ""
    secret: str = "s3cret-of-the-erp"
    script: list[int | str] = field(default_factory=list)
    default: int | str = 200
    delay: float = 0.0  # seconds each request takes to answer (a busy ERP)
    posts: list[Post] = field(default_factory=list)
    keys: Counter = field(default_factory=Counter)  # orders accepted (2xx), by key
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def next_answer(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    @property
    def accepted(self) -> list[Post]:
        """The posts it answered 2xx."""
        return [p for p in self.posts if isinstance(p.answered, int) and p.answered < 300]

    def signed(self, post: Post) -> bool:
        """Whether a post carries a valid signature of its body."""
        return verify(self.secret, post.body, post.headers.get("X-Impexmod-Signature"))


@contextmanager
def receiving(**settings) -> Iterator[Receiver]:
    """A receiver on a free loopback port for the duration of the block."""
    receiver = Receiver(**settings)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = receiver.next_answer()
            if receiver.delay:
                time.sleep(receiver.delay)
            post = Post(dict(self.headers), body, answer)
            with receiver.lock:
                receiver.posts.append(post)
            if answer == "hang":
                receiver.stop.wait(30)  # the client gives up first
                return
            if answer < 300:
                with receiver.lock:
                    for key in post.order_keys():
                        receiver.keys[key] += 1
            text = b"ok" if answer < 300 else b"Internal error:\n the ERP is down\n" + b"x" * 300
            self.send_response(answer)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/orders"
    try:
        yield receiver
    finally:
        receiver.stop.set()
        server.shutdown()
        thread.join(5)
        server.server_close()
