"""A real SMTP server on loopback for the tests (aiosmtpd): every accepted message is written
to OUT/NNNNNNN.eml (renamed into place once complete) with its envelope in NNNNNNN.json.
OUT/rules.json, re-read at every RCPT TO, maps a lower-cased recipient to the reply to refuse
it with ("550 5.1.1 no such user", "451 4.3.0 try later"); OUT/delay_ms, if present, slows
every DATA by that many milliseconds (a relay under load). With MODE CERT KEY after the port,
it speaks TLS: MODE "starttls" requires STARTTLS before anything else, "tls" is TLS from the
first byte (port 465 style). Runs until stdin closes."""

import asyncio
import ssl

import json
import os
import sys

from aiosmtpd.controller import Controller

OUT = sys.argv[1]
PORT = int(sys.argv[2])


class Sink:
    def __init__(self):
        self.count = 0

    def rules(self):
        try:
            with open(os.path.join(OUT, "rules.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.rules().get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        try:
            with open(os.path.join(OUT, "delay_ms")) as f:
                await asyncio.sleep(int(f.read()) / 1000)
        except FileNotFoundError:
            pass
        self.count += 1
        name = os.path.join(OUT, f"{self.count:07d}")
        with open(name + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(name + ".tmp", name + ".eml")
        return "250 2.0.0 accepted"


options = {}
if len(sys.argv) > 3:
    mode, cert, key = sys.argv[3:6]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if mode == "starttls":
        options = {"tls_context": context, "require_starttls": True}
    elif mode == "tls":
        options = {"ssl_context": context}
    else:
        raise SystemExit(f"unknown TLS mode {mode!r}")
controller = Controller(Sink(), hostname="127.0.0.1", port=PORT, **options)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
