"""``ldm-keras zoo list|info|verify [--eval] NAME|build NAME``.

Example::

    ldm-keras zoo list
    ldm-keras zoo info digits-simclr
    ldm-keras zoo verify --eval digits-simclr      # hashes, reload, reference, metric
    ldm-keras zoo build digits-simclr              # retrain from the recipe and seed
    ldm-keras zoo --debug info digits-simclr       # a traceback with any error

Exit codes: 0 success; 1 ``verify`` ran and an entry failed its checks; 2 the command could
not run — an unknown entry, a malformed or unsafe zoo (bad ``index.json`` / ``config.json``,
a path outside the zoo, a refused Keras config, a file over the size cap), a corrupted
file, a missing file or folder. Errors are one line, ``ldm-keras zoo: error: ...``, saying
what was wrong and what was expected; ``--debug`` prints the traceback too.
"""

import argparse
import json
import sys
import traceback

EXIT_FAILED = 1
EXIT_ERROR = 2


def add_parser(sub):
    """Add the ``zoo`` sub-command to an argparse sub-parsers object."""
    z = sub.add_parser("zoo", help="list, inspect, verify or rebuild the published encoders")
    z.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                   dest="backend_sub", help="Keras backend")
    z.add_argument("--debug", action="store_true", help="print the traceback of an error")
    zs = z.add_subparsers(dest="zoo_command", required=True)
    subs = [zs.add_parser("list", help="list the entries")]
    i = zs.add_parser("info", help="describe an entry (and print its card)")
    i.add_argument("name")
    i.add_argument("--json", action="store_true", help="print JSON only")
    v = zs.add_parser("verify", help="check hashes, reloading and reference outputs")
    v.add_argument("name", nargs="?", default=None, help="entry (default: all with weights)")
    v.add_argument("--eval", action="store_true",
                   help="also recompute the headline metric from the data")
    b = zs.add_parser("build", help="retrain an entry from its recipe and write it")
    b.add_argument("name")
    b.add_argument("--train", action="store_true",
                   help="train even entries published without weights (e.g. CIFAR-10)")
    b.add_argument("--root", default=None, help="zoo directory to write (default: the zoo)")
    for p in (*subs, i, v, b):  # `zoo --debug CMD` and `zoo CMD --debug` both work
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="print the traceback of an error")
    return z


def error_line(e):
    """One line for the user: what was wrong and what was expected (the message of
    ``e``, its whitespace collapsed)."""
    text = " ".join(str(e).split())
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return text or type(e).__name__


def run(args):
    """Run a parsed ``zoo`` command; returns the exit code."""
    from ._errors import ZooError

    try:
        return _run(args)
    except (ZooError, OSError) as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"ldm-keras zoo: error: {error_line(e)}", file=sys.stderr)
        return EXIT_ERROR


def _run(args):
    from . import builder, index, verifier

    cmd = args.zoo_command
    if cmd == "list":
        zoo_index = index.read_index()
        width = max((len(n) for n in zoo_index["entries"]), default=0)
        for name, entry in sorted(zoo_index["entries"].items()):
            size = sum(f["size"] for f in entry["files"].values())
            weights = "" if entry.get("weights", True) else "  [recipe only, no weights]"
            print(f"{name:<{width}}  v{entry['version']:<6} {size / 1024:8.1f} KiB  "
                  f"{entry.get('summary', '')}{weights}")
        return 0
    if cmd == "info":
        info = index.info(args.name)
        if args.json:
            print(json.dumps(info, indent=2, default=str))
            return 0
        if info["card"] is not None:
            print(index.read_card(args.name))
        print(json.dumps({k: info[k] for k in ("version", "kind", "has_weights", "files")},
                         indent=2))
        return 0
    if cmd == "verify":
        entries = index.read_index()["entries"]
        names = [args.name] if args.name else [
            n for n in sorted(entries) if entries[n].get("weights", True)]
        ok = True
        for name in names:
            report = verifier.verify(name, eval=args.eval)
            ok = ok and report["ok"]
            ref = report["reference"]
            line = (f"{name}: {'OK' if report['ok'] else 'FAILED'} on {report['backend']} — "
                    f"{report['files']} files, SHA-256 ok; reference max |Δ| "
                    f"{ref['max_abs_diff']:.2e} (≤ {ref['atol']:g})")
            if "eval" in report:
                e = report["eval"]
                line += (f"; {e['metric']} recomputed {e['recomputed']:.4f} vs card "
                         f"{e['stored']:.4f} (|Δ| {e['abs_diff']:.4f} ≤ {e['tolerance']})")
            print(line)
            print(json.dumps({k: v for k, v in report.items()}, default=str))
        return 0 if ok else EXIT_FAILED
    if cmd == "build":
        record = builder.build(args.name, root=args.root, train=args.train or None,
                                verbose=2)
        print(json.dumps({"built": args.name, **record}, indent=2))
        return 0
    return EXIT_ERROR
