"""python3 -m gild: quick calls from the shell, like gildctl.

    python3 -m gild call URL FUNCTION [ARG...] [NAME=ARG...]
    python3 -m gild stream URL FUNCTION [ARG...] [NAME=ARG...]
    python3 -m gild exec URL FILE|- [NAME=ARG...]   (server: --allow-exec)
    python3 -m gild status URL
    python3 -m gild ping URL

Options before the command, as gildctl takes them: --timeout SECONDS,
--token SECRET (default $GILD_TOKEN), and for tls+tcp:// URLs --tls-ca,
--tls-cert, --tls-key (defaults $GILD_TLS_CA, $GILD_TLS_CERT,
$GILD_TLS_KEY) and --tls-server-name. URL may list several servers,
separated by commas.

Each ARG is a JSON literal; results are printed as JSON (one per line for a
stream). Exit status: 0 on success, 1 when the call failed, 2 on bad usage.
"""
import argparse
import json
import re
import sys

import gild


def _arg(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"gild: argument {text!r} is not JSON: {e}") from None


def _split(args):
    pos, kw = [], {}
    for a in args:
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", a, re.S)
        if m:
            kw[m.group(1)] = _arg(m.group(2))
        else:
            pos.append(_arg(a))
    return pos, kw


def _show(value):
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m gild",
        description="Call a gild server from the shell (arguments are JSON).")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds before the call's deadline")
    p.add_argument("--token", metavar="SECRET", default=None,
                   help="the server's token (default: $GILD_TOKEN), for a "
                   "server started with --token")
    p.add_argument("--tls-ca", metavar="FILE", default=None,
                   help="PEM CA certificate(s) that signed the server's "
                   "certificate, for tls+tcp:// URLs (default: $GILD_TLS_CA, "
                   "else the system's CA bundle)")
    p.add_argument("--tls-cert", metavar="FILE", default=None,
                   help="this client's PEM certificate, for a server that "
                   "requires one (default: $GILD_TLS_CERT)")
    p.add_argument("--tls-key", metavar="FILE", default=None,
                   help="its unencrypted PEM private key (default: "
                   "$GILD_TLS_KEY, else the key inside --tls-cert)")
    p.add_argument("--tls-server-name", metavar="NAME", default=None,
                   help="the name the server's certificate must hold, when "
                   "not the URL's host")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("call", "stream"):
        s = sub.add_parser(name, help=f"{name} FUNCTION with JSON arguments")
        s.add_argument("url")
        s.add_argument("function")
        s.add_argument("args", nargs="*", help="JSON values, or NAME=JSON")
    s = sub.add_parser("exec", help="run the Python source in FILE (- for "
                       "standard input) with NAME=JSON variables; print "
                       "its `result`")
    s.add_argument("url")
    s.add_argument("file")
    s.add_argument("args", nargs="*", help="NAME=JSON variables")
    for name in ("status", "ping"):
        sub.add_parser(name).add_argument("url")
    ns = p.parse_args(argv)
    try:
        urls = ns.url.split(",")
        with gild.connect(urls if len(urls) > 1 else urls[0],
                          token=ns.token, tls_ca=ns.tls_ca,
                          tls_cert=ns.tls_cert, tls_key=ns.tls_key,
                          tls_server_name=ns.tls_server_name) as c:
            if ns.cmd == "call":
                pos, kw = _split(ns.args)
                print(_show(c.call(ns.function, *pos, timeout=ns.timeout,
                                   **kw)))
            elif ns.cmd == "stream":
                pos, kw = _split(ns.args)
                with c.stream(ns.function, *pos, timeout=ns.timeout,
                              **kw) as s:
                    for chunk in s:
                        print(_show(chunk), flush=True)
            elif ns.cmd == "exec":
                pos, kw = _split(ns.args)
                if pos:
                    p.error("exec takes only NAME=JSON variables after FILE")
                if ns.file == "-":
                    source, name = sys.stdin.read(), "<stdin>"
                else:
                    with open(ns.file) as f:
                        source, name = f.read(), ns.file
                fut = c.submit_exec(source, timeout=ns.timeout,
                                    filename=name, **kw)
                print(_show(fut.result()))
            elif ns.cmd == "status":
                print(json.dumps(c.status(), indent=2, default=repr))
            else:
                c.ping()
                print(f"pong from {ns.url}")
    except gild.Error as e:
        print(str(e), file=sys.stderr)
        return 1
    except (ConnectionError, ValueError, TypeError, OSError) as e:
        print(f"gild: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
