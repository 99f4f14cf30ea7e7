"""Messages per second through Clarion's pooled SMTP transport, as a ratio of a bare aiosmtplib loop, against the
same local SMTP sink (aiosmtpd's Sink, in its own process) in the same run.

    .venv/bin/python bench/smtp_send.py [--messages 2000] [--rounds 3]

The bare loop keeps one connection and sends ready-made bytes: the message the transport builds for the same
Outbound, so both put the same bytes on the wire. The transport builds MIME (and signs, in the DKIM row) per
message, borrows a pooled connection and maps the reply. Rounds are interleaved; the table shows medians.
Goal: the pooled transport, one connection, at least 0.8 of the bare loop.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ruff: noqa: E402  (imports must follow the sys.path fix below)
# Run as a script, this file's folder comes first on sys.path, where its name would shadow the stdlib `email`
# package: put the repository there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable

import aiosmtplib
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clarion.channels.config import DkimSettings, SmtpSettings
from clarion.channels.delivery import DeliveryStatus, EmailContent, Outbound
from clarion.channels.email.smtp import SmtpTransport

GOAL = 0.8
CONTENT = EmailContent(
    from_address="Clarion News <news@example.com>",
    subject="Your weekly digest, Ana",
    text="Hi Ana,\n\nHere is what happened this week.\n" * 20,
    html="<html><body><p>Hi Ana,</p>" + "<p>Here is what happened this week.</p>" * 40 + "</body></html>",
    unsubscribe_url="https://clarion.example/t/u/abc123",
)


def outbound(i: int) -> Outbound:
    return Outbound("EMAIL", "ana@example.org", f"bench-{i}", "app-bench", CONTENT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.kill()
    raise RuntimeError("the SMTP sink did not start")


async def bare_loop(port: int, count: int) -> float:
    data = SmtpTransport(SmtpSettings(host="127.0.0.1", security="none")).render(outbound(0), CONTENT)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for _ in range(count):
        await client.sendmail("news@example.com", ["ana@example.org"], data)
    elapsed = time.perf_counter() - started
    await client.quit()
    return count / elapsed


async def transport_run(settings: SmtpSettings, count: int, concurrency: int) -> float:
    transport = SmtpTransport(settings)
    await transport.send(outbound(-1))  # open the pool's connection(s) outside the timing, as the bare loop does
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            result = await transport.send(outbound(i))
            assert result.status is DeliveryStatus.SUCCESSFUL, result

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await transport.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    sink = start_sink(port)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    plain = SmtpSettings(host="127.0.0.1", port=port, security="none", pool_size=1)
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "bare aiosmtplib loop, 1 connection": lambda: bare_loop(port, args.messages),
        "SmtpTransport, pool of 1": lambda: transport_run(plain, args.messages, 1),
        "SmtpTransport, pool of 1, DKIM rsa-sha256": lambda: transport_run(
            plain.model_copy(
                update={"dkim": DkimSettings(domain="example.com", selector="s1", private_key=pem.decode())}
            ),
            args.messages,
            1,
        ),
        "SmtpTransport, pool of 4, 4 concurrent sends": lambda: transport_run(
            plain.model_copy(update={"pool_size": 4}), args.messages, 4
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(args.rounds):
            for name, run in variants.items():
                rates[name].append(asyncio.run(run()))
    finally:
        sink.terminate()
        sink.wait(10)
    bare_name = "bare aiosmtplib loop, 1 connection"
    html_bytes = len(CONTENT.html or "")
    print(f"{args.messages} messages of {html_bytes} B HTML + text, {args.rounds} interleaved rounds, medians")
    print("(ratio: the median over rounds of the variant's rate / the bare loop's rate in the same round)\n")
    print(f"| {'variant':<46} | {'msg/s':>7} | {'ratio to bare':>13} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 15}|")
    ratios = {}
    for name, values in rates.items():
        ratios[name] = statistics.median(v / b for v, b in zip(values, rates[bare_name], strict=True))
        print(f"| {name:<46} | {statistics.median(values):>7.0f} | {ratios[name]:>13.2f} |")
    ratio = ratios["SmtpTransport, pool of 1"]
    print(f"\ngoal: pooled transport >= {GOAL} x bare loop: {'met' if ratio >= GOAL else 'NOT met'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
