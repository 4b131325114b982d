"""``ipmirror key …`` and ``ipmirror name …``: keys and IPNS names, shaped like Kubo's commands."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.codec import ipns
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import Conflict, InvalidInput, NotFound, UnsupportedFormat
from ipmirror.naming.keystore import KEY_TYPES, SELF, atomic_write
from ipmirror.naming.names import Names, load_record_file

FORMATS: Final = ("libp2p-protobuf-cleartext", "pem-pkcs8-cleartext")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    key = sub.add_parser("key", help="create and manage IPNS keys").add_subparsers(dest="sub", required=True)
    p = key.add_parser("gen", help="create a key; print its IPNS name")
    p.add_argument("name")
    p.add_argument("-t", "--type", default="ed25519", choices=KEY_TYPES, help="key type (default ed25519)")
    p.add_argument("-s", "--size", type=int, help="RSA key size in bits (default 2048)")
    p.set_defaults(func=key_gen)
    p = key.add_parser("list", help="list keys")
    p.add_argument("-l", action="store_true", dest="long", help="also show the IPNS names")
    p.set_defaults(func=key_list)
    p = key.add_parser("rm", help="delete keys")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-l", action="store_true", dest="long", help="also show the IPNS names")
    p.set_defaults(func=key_rm)
    p = key.add_parser("rename", help="rename a key")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("-f", "--force", action="store_true", help="replace a key named NEW")
    p.set_defaults(func=key_rename)
    p = key.add_parser("export", help="write a private key to a file (keep it secret)")
    p.add_argument("name")
    p.add_argument("-o", "--output", help="file to create (default NAME.key; never overwritten)")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])
    p.set_defaults(func=key_export)
    p = key.add_parser("import", help="import a key exported by ipmirror or Kubo")
    p.add_argument("name")
    p.add_argument("file", help="key file ('-' for stdin)")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0])
    add_bool(p, "--allow-any-key-type", False, "also import secp256k1 and ECDSA keys")
    p.set_defaults(func=key_import)

    name = sub.add_parser("name", help="publish and resolve IPNS names").add_subparsers(dest="sub",
                                                                                        required=True)
    p = name.add_parser("publish", help="sign and store an IPNS record pointing at a path")
    p.add_argument("path", metavar="/ipfs/CID[/PATH]")
    p.add_argument("-k", "--key", default="self", help="key name or its IPNS name (default self)")
    p.add_argument("-t", "--lifetime", default="48h", help="how long the record is valid (default 48h)")
    p.add_argument("--ttl", default="5m", help="how long resolvers may cache it (default 5m)")
    add_bool(p, "--allow-offline", False, "accepted for Kubo compatibility; publishing is always local")
    add_bool(p, "--v1compat", True, "also write the legacy V1 fields and signature (default true)")
    add_bool(p, "--quieter", False, "print only the IPNS name", short="-Q")
    p.set_defaults(func=name_publish)
    p = name.add_parser("resolve", help="print the path an IPNS name points at (verified)")
    p.add_argument("name", nargs="?", default="self", help="IPNS name, /ipns/ path or key name")
    add_bool(p, "--recursive", True, "follow /ipns/ values (default true)")
    p.set_defaults(func=name_resolve)
    p = name.add_parser("inspect", help="decode a record file and check it")
    p.add_argument("file", help="record file ('-' for stdin)")
    p.add_argument("--verify", metavar="NAME", help="check the record against this IPNS name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=name_inspect)
    p = name.add_parser("put", help="store a record made elsewhere (if valid and newer)")
    p.add_argument("name", help="the IPNS name the record is for")
    p.add_argument("file", help="record file ('-' for stdin)")
    p.set_defaults(func=name_put)
    p = name.add_parser("get", help="write the stored record of a name to stdout")
    p.add_argument("name")
    p.set_defaults(func=name_get)
    p = name.add_parser("dnslink", help="print the DNSLink TXT value for a name")
    p.add_argument("name", help="IPNS name or key name")
    p.set_defaults(func=name_dnslink)
    p = name.add_parser("republish", help="re-sign local records that expire soon ('serve' does this hourly)")
    p.add_argument("--within", default="24h", help="records expiring within this (default 24h)")
    p.add_argument("-t", "--lifetime", default="48h", help="new lifetime (default 48h)")
    p.set_defaults(func=name_republish)


# -- durations, as Go writes them ----------------------------------------------------------------

_UNITS: Final = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": ipns.SECOND,
                 "m": ipns.MINUTE, "h": ipns.HOUR}
_PART: Final = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Nanoseconds in a Go duration (``48h``, ``5m``, ``1h30m``, ``1.5s``, ``300ms``); not negative."""
    t = text.strip().removeprefix("+")
    if t == "0":
        return 0
    if not t:
        raise InvalidInput("empty duration")
    pos, total = 0, 0
    while pos < len(t):
        m = _PART.match(t, pos)
        if m is None or not (m.group(1) or m.group(2)):
            raise InvalidInput(f"invalid duration {text!r} (examples: 48h, 5m, 1h30m, 300s)")
        unit = _UNITS[m.group(3)]
        frac = m.group(2) or ""
        total += int(m.group(1) or 0) * unit + (int(frac) * unit // 10 ** len(frac) if frac else 0)
        pos = m.end()
    if total >= 1 << 63:
        raise InvalidInput(f"duration {text!r} is too long")
    return total


def _decimal(n: int, size: int) -> str:
    whole, frac = divmod(n, size)
    digits = f"{frac:0{len(str(size)) - 1}d}".rstrip("0") if frac else ""
    return f"{whole}.{digits}" if digits else str(whole)


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``5m0s``, ``1h30m0s``, ``1.5s``, ``300ms``, ``0s``."""
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u == 0:
        return "0s"
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_decimal(u, 1_000)}µs"
    if u < ipns.SECOND:
        return f"{sign}{_decimal(u, 1_000_000)}ms"
    h, rem = divmod(u, ipns.HOUR)
    m, rem = divmod(rem, ipns.MINUTE)
    return sign + (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{_decimal(rem, ipns.SECOND)}s"


# -- helpers --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _naming(ctx: Ctx) -> Iterator[Names]:
    with ctx.open_repo() as repo:  # made first only by the commands in common.CREATING
        yield repo.names


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as e:
        raise InvalidInput(f"{name}: {e.strerror}") from None


# -- key ------------------------------------------------------------------------------------------

def key_gen(ctx: Ctx) -> int:
    with _naming(ctx) as names:
        info = names.keys.gen(ctx.args.name, ctx.args.type, ctx.args.size)
    ctx.print(info.id)
    return 0


def key_list(ctx: Ctx) -> int:
    with _naming(ctx) as names:
        for info in names.keys.list():
            ctx.print(f"{info.id}  {info.name}" if ctx.args.long else info.name)
    return 0


def key_rm(ctx: Ctx) -> int:
    """Every name is checked before any key is removed (all or nothing, as far as the checks go)."""
    with _naming(ctx) as names:
        have = set(names.keys.names())
        none = "; no key was removed" if len(ctx.args.names) > 1 else ""
        for n in ctx.args.names:
            if n == SELF:
                raise InvalidInput(f"the node key 'self' cannot be removed{none}")
            if n not in have:
                raise NotFound(f"no key named {n!r}{none}", n)
        for n in dict.fromkeys(ctx.args.names):
            pid = names.keys.rm(n)
            ctx.print(f"{pid or '?'}  {n}" if ctx.args.long else n)
    return 0


def key_rename(ctx: Ctx) -> int:
    a = ctx.args
    with _naming(ctx) as names:
        info = names.keys.rename(a.old, a.new, force=a.force)
    ctx.print(f'Key {info.id} was renamed to "{info.name}"')
    return 0


def key_export(ctx: Ctx) -> int:
    a = ctx.args
    pem = a.format == "pem-pkcs8-cleartext"
    out = Path(a.output or f"{a.name}.{'pem' if pem else 'key'}")
    with _naming(ctx) as names:
        key = names.keys.get(a.name)
    try:
        atomic_write(out, key.to_pkcs8_pem() if pem else key.to_bytes(), replace=False)
    except Conflict:
        raise Conflict(f"{out} exists already; refusing to overwrite it") from None
    except OSError as e:
        raise InvalidInput(f"{out}: {e.strerror}") from None
    ctx.err.write(f"exported key {a.name!r} to {out}\n")
    return 0


def key_import(ctx: Ctx) -> int:
    a = ctx.args
    data = _read_input(a.file)
    with _naming(ctx) as names:
        info = names.keys.import_(a.name, data, pem=a.format == "pem-pkcs8-cleartext",
                                  allow_any_type=a.allow_any_key_type)
    ctx.print(info.id)
    return 0


# -- name -----------------------------------------------------------------------------------------

def name_publish(ctx: Ctx) -> int:
    a = ctx.args
    lifetime, ttl = parse_duration(a.lifetime), parse_duration(a.ttl)
    with _naming(ctx) as names:
        pub = names.publish(a.key, a.path, lifetime_ns=lifetime, ttl_ns=ttl, v1_compatible=a.v1compat)
    ctx.print(pub.name if a.quieter else f"Published to {pub.name}: {pub.value}")
    return 0


def name_resolve(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        ctx.print(repo.names.path_of(ctx.args.name, recursive=ctx.args.recursive,
                                     lookup=repo.mirror_lookup))
    return 0


def name_put(ctx: Ctx) -> int:
    data = _read_input(ctx.args.file)
    with _naming(ctx) as names:
        rec = names.put_record(data, ctx.args.name)
    ctx.print(f"Stored record for {rec.name}: {rec.path} (sequence {rec.sequence})")
    return 0


def name_get(ctx: Ctx) -> int:
    with _naming(ctx) as names:
        raw = names.get_record(ctx.args.name)
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return 0


def name_republish(ctx: Ctx) -> int:
    """Done by the running server's republisher when one runs (over the control channel), so
    records are not signed by two processes at once; here otherwise."""
    from ipmirror.server.control import ControlError, NoServer
    from ipmirror.server.republish import published_json
    from ipmirror.serving import ask

    a = ctx.args
    within, lifetime = parse_duration(a.within), parse_duration(a.lifetime)
    try:
        done = ask(ctx.repo_path, "republish", {"within_ns": within, "lifetime_ns": lifetime})
    except (NoServer, ControlError):  # none runs, or one without a republisher (read-only)
        with _naming(ctx) as names:
            done = [published_json(p) for p in names.republish(within_ns=within, lifetime_ns=lifetime)]
    for p in done:
        ctx.print(f"Republished {p['name']}: {p['value']} (sequence {p['sequence']}, "
                  f"valid until {p['validity']})")
    return 0


def name_dnslink(ctx: Ctx) -> int:
    with _naming(ctx) as names:
        ctx.print(names.dnslink(ctx.args.name))
    return 0


def name_inspect(ctx: Ctx) -> int:
    a = ctx.args
    raw = sys.stdin.buffer.read(1 << 20) if a.file == "-" else load_record_file(Path(a.file))
    name = None
    if a.verify:
        try:
            name = PeerID.parse(a.verify.removeprefix("/ipns/"))
        except UnsupportedFormat:
            raise
        except InvalidInput:  # not an IPNS name: maybe the name of a local key
            with _naming(ctx) as names:
                name = names.name_of(a.verify)
    ins = ipns.inspect(raw, name, time.time_ns())
    report = _inspection(ins)
    if a.json:
        ctx.print(json.dumps(report, indent=2))
        return 0
    e = report["Entry"]
    assert isinstance(e, dict)
    rows = [("Value", e["Value"]), ("Validity Type", e["ValidityType"]), ("Validity", e["Validity"]),
            ("Sequence", e["Sequence"]), ("TTL", e["TTL"]), ("Public Key", e["PublicKey"]),
            ("Signatures", ", ".join(ins.signature_types) or "none")]
    if e.get("V1Differs"):
        rows.insert(1, ("Value (V1)", e["ValueV1"]))
    if ins.data_error:
        rows.append(("Data", ins.data_error))
    for label, value in rows:
        ctx.print(f"{label + ':':<15}{'-' if value is None else value}")
    ctx.print("")
    if ins.valid is None:
        ctx.print("Validation:    not checked (the record does not carry its key; use --verify NAME)")
    else:
        ctx.print(f"Validation:    {'valid' if ins.valid else 'INVALID'} for {ins.name}")
        if ins.error:
            ctx.print(f"Reason:        {ins.error}")
    if ins.signature_v1_valid is not None:
        ctx.print(f"Signature V1:  {'verifies' if ins.signature_v1_valid else 'does not verify'} "
                  "(informational: V1 signatures are never used for validation)")
    return 0


def _text(b: bytes | None) -> str | None:
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(b).decode("ascii")


def _inspection(ins: ipns.Inspection) -> dict[str, object]:
    e, d = ins.entry, ins.data
    value = d.value if d else e.value
    try:
        value_text: str | None = ipns.value_path(value) if value is not None else None
    except InvalidInput:
        value_text = _text(value)
    vt = d.validity_type if d else e.validity_type
    pub = None
    if e.pub_key:
        try:
            pub = str(ipns.embedded_name(e))
        except InvalidInput as err:
            pub = f"invalid ({err})"
    elif ins.name is not None and ins.name.is_identity:
        pub = "inlined in the name"
    ttl = d.ttl if d else e.ttl
    entry: dict[str, object] = {
        "Value": value_text,
        "ValidityType": None if vt is None else ("EOL" if vt == ipns.VALIDITY_EOL else vt),
        "Validity": _text(d.validity if d else e.validity),
        "Sequence": d.sequence if d else e.sequence,
        "TTL": None if ttl is None else format_duration(ttl),
        "TTLNanoseconds": ttl,
        "PublicKey": pub,
        "SignatureV1": bool(e.signature_v1),
        "SignatureV2": bool(e.signature_v2),
        "V1Differs": bool(d and e.has_v1_fields and e.value != d.value),
        "ValueV1": _text(e.value),
        "ExtraData": sorted(k for k, _ in d.extra) if d else [],
    }
    return {"Entry": entry, "Signatures": list(ins.signature_types),
            "Validation": {"Name": str(ins.name) if ins.name else None, "Valid": ins.valid,
                           "Reason": ins.reason, "Error": ins.error,
                           "SignatureV1Valid": ins.signature_v1_valid}}
