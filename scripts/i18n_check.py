"""Check FinePay's message catalogues (``make i18n-check``, run by ``make test`` before pytest).

Fails (exit 1) when a catalogue under translations/ has an untranslated or fuzzy entry, is out
of date with the source (a fresh extraction has msgids it lacks, or it keeps msgids the source
no longer has), has a placeholder that does not match its msgid, has half-width punctuation beside
Chinese characters in a Chinese translation, or does not compile.

``--fill-source en`` (used by ``make i18n``) copies each empty msgstr of the source-language
catalogue from its msgid: English is written in the code, so only Chinese needs a translator.
"""
import argparse
import os
import re
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
    """A message's identity: its msgid, and for a plural message its plural form too, and its context.

    A message that became plural in the source must not pass as the old singular one: the
    plural lookup would fall back to English.
    """
    if isinstance(message.id, (list, tuple)):
        return (message.id[0], message.context, message.id[1])
    return (message.id, message.context, None)


PERCENT = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%%|%[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%")
BRACES = re.compile(r"\{(\w*)\}")


def strings_of(value):
    """The msgid or msgstr forms of a message as a list."""
    return [v for v in (value if isinstance(value, (list, tuple)) else [value]) if v]


def format_problems(message):
    """What would break when the translation is formatted, as FinePay formats it.

    Jinja's gettext applies %-formatting to every template string, flagged or not (a lone %
    in a translation is a 500 on every page); localize_message fills {name} messages with
    str.format. So each translation must take the same %(name)s and {name} as its msgid.
    """
    problems = []
    names = set()
    brace_names = set()
    for msgid in strings_of(message.id):
        names |= {m.group(1) for m in PERCENT.finditer(msgid) if m.group(1)}
        brace_names |= set(BRACES.findall(msgid))
    for msgstr in strings_of(message.string):
        try:
            msgstr % {name: 0 for name in names | {"num"}}
        except (ValueError, TypeError, KeyError) as error:
            problems.append(f"% formatting fails ({error}): {msgstr!r}")
        if set(BRACES.findall(msgstr)) != brace_names:
            problems.append(f"{{}} placeholders {sorted(set(BRACES.findall(msgstr)))} differ from the msgid's "
                            f"{sorted(brace_names)}: {msgstr!r}")
    return problems


# Chinese text takes full-width punctuation (，：；（）？！): a half-width one beside a Chinese character
# (a space between them too) is a typo, e.g. "可成功支付的 Visa 卡: 缴款". Placeholders are left out of
# the check, and so is a code or a format quoted in “…”, which keeps its own characters (“类型:编号”).
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
HALF_WIDTH_BESIDE_CJK = re.compile(rf"[{CJK}] ?[,:;()?!]|[,:;()?!] ?[{CJK}]")
QUOTED = re.compile(r"“[^”]*”")
CHINESE_LOCALES = ("zh_Hans_CN",)


def typography_problems(message):
    """Half-width punctuation beside Chinese characters in a Chinese translation."""
    problems = []
    for msgstr in strings_of(message.string):
        text = QUOTED.sub("X", BRACES.sub("X", PERCENT.sub("X", msgstr)))
        found = HALF_WIDTH_BESIDE_CJK.search(text)
        if found:
            problems.append(f"half-width punctuation beside Chinese ({found.group(0)!r}; use ，：；（）？！): {msgstr!r}")
    return problems


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
        # pybabel writes the .mo even when a message is wrong, and writes none for a fuzzy
        # catalogue while exiting 0: read its status, its words and whether the file is there.
        if done.returncode != 0 or "error" in output.lower():
            problems.append(f"pybabel compile failed (exit {done.returncode}): {output}")
        elif not os.path.exists(out):
            problems.append(f"pybabel compile wrote no .mo file: {output}")
    return problems


def check_catalog(path, locale, source_keys):
    """Every problem of one catalogue, as lines for people."""
    problems = []
    if not os.path.exists(path):
        return [f"{path}: missing (run make i18n)"]
    catalog = read_catalog(path, locale)
    if catalog.fuzzy:
        # pybabel compile skips a catalogue whose header is fuzzy, silently: no .mo at all.
        problems.append("the catalogue's header is marked fuzzy: pybabel would not compile it")
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
        else:
            problems += [f"{key[0]!r}: {p}" for p in format_problems(message)]
            if locale in CHINESE_LOCALES:
                problems += [f"{key[0]!r}: {p}" for p in typography_problems(message)]
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
