"""``redis://HOST[:PORT]/STREAM[?maxlen=N&queue=N]``: where a Redis stream is, for the sink
(``--event-sink``) and the consumer (``ftpd-eventd --redis``). Syntax only, no I/O, so that
the settings check can use it without opening anything."""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_PORT = 6379
DEFAULT_MAXLEN = 1_000_000  # entries the stream keeps (XADD MAXLEN ~)
DEFAULT_QUEUE = 10_000  # messages the sink holds while Redis is slow or away
OPTIONS = ("maxlen", "queue")


class RedisURL(NamedTuple):
    host: str
    port: int
    stream: str
    maxlen: int = DEFAULT_MAXLEN
    queue: int = DEFAULT_QUEUE

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.stream}"


def parse_url(url: str) -> RedisURL:
    """Parse *url*; ValueError with a message naming the bad part."""
    if not url.startswith("redis://"):
        raise ValueError(f"{url!r}: expected redis://HOST:PORT/STREAM")
    rest = url[len("redis://"):]
    where, sep, path = rest.partition("/")
    if not sep:
        raise ValueError(f"{url!r}: no stream (redis://HOST:PORT/STREAM)")
    if "@" in where:
        raise ValueError(f"{url!r}: user names and passwords are not supported")
    host, port = _host_port(url, where)
    stream, _, query = path.partition("?")
    if not stream or not stream.isprintable() or " " in stream:
        raise ValueError(f"{url!r}: bad stream name {stream!r}")
    values = {"maxlen": DEFAULT_MAXLEN, "queue": DEFAULT_QUEUE}
    for item in query.split("&") if query else ():
        name, eq, value = item.partition("=")
        if name not in OPTIONS or not eq:
            raise ValueError(f"{url!r}: unknown option {item!r} (maxlen=N, queue=N)")
        if not (value.isascii() and value.isdigit() and int(value) > 0):
            raise ValueError(f"{url!r}: {name} must be a positive number, got {value!r}")
        values[name] = int(value)
    return RedisURL(host, port, stream, values["maxlen"], values["queue"])


def _host_port(url: str, where: str) -> tuple[str, int]:
    if where.startswith("["):
        host, bracket, tail = where[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise ValueError(f"{url!r}: bad IPv6 address in {where!r}")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = where.partition(":")
        if ":" in port_text:
            raise ValueError(f"{url!r}: write an IPv6 address as [{where}]")
    if not host or not host.isprintable() or " " in host:
        raise ValueError(f"{url!r}: no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"{url!r}: bad port {port_text!r} (1-65535)")
    return host, int(port_text)
