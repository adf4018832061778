"""A real SMTP server (aiosmtpd) for patrol's email receiver tests, on 127.0.0.1 and a free port.

Prints "ready PORT" on stdout once it accepts connections (the harness's readiness signal). Every
accepted message is written to --maildir as N.eml (the raw bytes) and N.json: the envelope, the
AUTH login, whether the session was encrypted, and the message as Python's email package parses it
(decoded headers, and the decoded text of every MIME part), so the Rust tests check the mail with an
independent MIME parser. Both files are complete before the server answers 250 to DATA.

Options make it behave like servers that refuse: --rcpt-reply / --data-reply answer RCPT TO / DATA
with a fixed reply ("550 5.1.1 ..."), --auth USER:PASSWORD requires AUTH, --tls-cert/--tls-key offer
STARTTLS (required before MAIL with --require-starttls), or wrap every connection in TLS
(--implicit-tls, for smtps://).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_message(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = {}
    for name in ("Subject", "From", "To", "Cc", "Message-ID", "X-Patrol-Idempotency-Key",
                 "Date", "MIME-Version"):
        value = msg.get(name)
        if value is not None:
            headers[name.lower()] = str(value)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transfer_encoding": part.get("Content-Transfer-Encoding"),
            "text": part.get_content(),
        })
    return {"content_type": msg.get_content_type(), "headers": headers, "parts": parts}


class Handler:
    def __init__(self, maildir, rcpt_reply, data_reply):
        self.maildir = maildir
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.count += 1
        base = os.path.join(self.maildir, str(self.count))
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.login_data.decode() if isinstance(session.login_data, bytes) else session.login_data,
            # STARTTLS sets session.ssl; an implicit-TLS transport carries its ssl_object.
            "encrypted": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "message": parse_message(envelope.content),
        }
        write_atomically(base + ".eml", envelope.content)
        write_atomically(base + ".json", json.dumps(summary, ensure_ascii=False).encode())
        return "250 2.0.0 Message accepted for delivery"


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Authenticator:
    def __init__(self, login, password):
        self.login = login.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == self.login and auth_data.password == self.password)
        # handled=False: aiosmtpd answers a failure with "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def tls_context(args):
    if not args.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return ctx


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--maildir", required=True)
    p.add_argument("--rcpt-reply")
    p.add_argument("--data-reply")
    p.add_argument("--auth", help="USER:PASSWORD required before MAIL")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    args = p.parse_args()

    handler = Handler(args.maildir, args.rcpt_reply, args.data_reply)
    ctx = tls_context(args)
    authenticator = Authenticator(*args.auth.split(":", 1)) if args.auth else None
    starttls_ctx = None if args.implicit_tls else ctx

    def factory():
        return SMTP(
            handler,
            hostname="smtp.patrol.test",
            tls_context=starttls_ctx,
            require_starttls=args.require_starttls,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            # Over STARTTLS, AUTH only after the upgrade (as real servers do); plain and implicit
            # TLS sessions may authenticate directly.
            auth_require_tls=starttls_ctx is not None,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=ctx if args.implicit_tls else None
    )
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    # Exit when the harness goes away (it closes our stdin, or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
