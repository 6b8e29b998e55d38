"""Check FinePay's message catalogues (``make i18n-check``, run by ``make test`` before pytest).

Fails (exit 1) when a catalogue under translations/ has an untranslated or fuzzy entry, is out
of date with the source (a fresh extraction has msgids it lacks, or it keeps msgids the source
no longer has), has a placeholder that does not match its msgid, or does not compile.

``--fill-source en`` (used by ``make i18n``) copies each empty msgstr of the source-language
catalogue from its msgid: English is written in the code, so only Chinese needs a translator.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from babel.messages.pofile import read_po, write_po

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCALES = ("zh_Hans_CN", "en")  # zh_Hans_CN: Babel's full name for zh_CN, which gettext looks for
DOMAIN = "messages"
# The same keywords as the Makefile's extraction: _l is lazy_gettext, N_ marks without translating.
EXTRACT_ARGS = ["-F", "babel.cfg", "-k", "_l", "-k", "N_", "--no-location"]


def po_path(directory, locale):
    """Where a locale's catalogue lives."""
    return os.path.join(directory, locale, "LC_MESSAGES", f"{DOMAIN}.po")


def read_catalog(path, locale=None):
    """A .po file as a babel Catalog."""
    with open(path, "rb") as handle:
        return read_po(handle, locale=locale)


def extract(pot_path):
    """Extract the source's messages into pot_path; raise if pybabel fails."""
    command = [sys.executable, "-m", "babel.messages.frontend", "extract", *EXTRACT_ARGS, "-o", pot_path, "."]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pybabel extract failed:\n{done.stderr}")


def message_key(message):
    """A message's identity in the catalogue: its msgid (singular for plurals) and context."""
    msgid = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    return (msgid, message.context)


def translated(message):
    """True if every form of the message has a translation."""
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return bool(strings) and all(s for s in strings)


def compile_problems(path, locale):
    """Compile the catalogue with pybabel into a temporary file: its exit status and error lines."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{DOMAIN}.mo")
        command = [sys.executable, "-m", "babel.messages.frontend", "compile", "-i", path, "-o", out,
                   "-l", locale, "--statistics"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        output = (done.stdout + done.stderr).strip()
        # pybabel writes the .mo even when a message is wrong: read its status and its words both.
        if done.returncode != 0 or "error" in output.lower():
            problems.append(f"pybabel compile failed (exit {done.returncode}): {output}")
    return problems


def check_catalog(path, locale, source_keys):
    """Every problem of one catalogue, as lines for people."""
    problems = []
    if not os.path.exists(path):
        return [f"{path}: missing (run make i18n)"]
    catalog = read_catalog(path, locale)
    keys = set()
    for message in catalog:
        if not message.id:
            continue  # the header
        key = message_key(message)
        keys.add(key)
        if message.fuzzy:
            problems.append(f"fuzzy: {key[0]!r}")
        elif not translated(message):
            problems.append(f"untranslated: {key[0]!r}")
    for message, errors in catalog.check():
        for error in errors:
            problems.append(f"placeholder: {message_key(message)[0]!r}: {error}")
    if source_keys is not None:
        for key in sorted(source_keys - keys, key=str):
            problems.append(f"out of date, not in the catalogue: {key[0]!r}")
        for key in sorted(keys - source_keys, key=str):
            problems.append(f"out of date, no longer in the source: {key[0]!r}")
    problems += compile_problems(path, locale)
    return [f"{locale}: {p}" for p in problems]


def fill_source(directory, locale):
    """Copy each empty msgstr of the source-language catalogue from its msgid."""
    path = po_path(directory, locale)
    catalog = read_catalog(path, locale)
    filled = 0
    for message in catalog:
        if not message.id or translated(message):
            continue
        if isinstance(message.id, (list, tuple)):
            message.string = tuple(message.id[min(i, 1)] for i in range(catalog.num_plurals))
        else:
            message.string = message.id
        message.flags.discard("fuzzy")
        filled += 1
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False)
    print(f"{locale}: {filled} msgstr filled from msgid")


def main(argv=None):
    """Check the catalogues; print every problem; exit 1 if there is any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--translations", default=os.path.join(ROOT, "translations"))
    parser.add_argument("--pot", help="an extracted .pot to compare with (default: extract now)")
    parser.add_argument("--locale", action="append", help="check only these locales")
    parser.add_argument("--skip-source", action="store_true", help="do not compare with the source")
    parser.add_argument("--fill-source", metavar="LOCALE", help="fill LOCALE's empty msgstr from msgid and exit")
    args = parser.parse_args(argv)
    if args.fill_source:
        fill_source(args.translations, args.fill_source)
        return 0
    source_keys = None
    if not args.skip_source:
        with tempfile.TemporaryDirectory() as tmp:
            pot = args.pot or os.path.join(tmp, "messages.pot")
            if not args.pot:
                extract(pot)
            source_keys = {message_key(m) for m in read_catalog(pot) if m.id}
    problems = []
    for locale in args.locale or LOCALES:
        problems += check_catalog(po_path(args.translations, locale), locale, source_keys)
    for problem in problems:
        print(problem)
    if problems:
        print(f"i18n-check: {len(problems)} problem(s); run `make i18n`, translate, and run it again.")
        return 1
    print(f"i18n-check: {', '.join(args.locale or LOCALES)} complete and up to date "
          f"({len(source_keys) if source_keys is not None else '?'} messages).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
