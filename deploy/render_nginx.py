"""Render an nginx config template from the environment: python3 deploy/render_nginx.py TEMPLATE > OUT.

Fills every ${FINEPAY_NAME} from the environment and leaves nginx's own $variables alone; exits 2
(writing nothing) when a placeholder has no value, so a half-rendered config never reaches nginx.
Standard library only: it runs on a load balancer that has no FinePay checkout's virtualenv.
"""
import os
import re
import sys

PLACEHOLDER = re.compile(r"\$\{(FINEPAY_[A-Z0-9_]+)\}")


def render(template, env):
    """The template with its placeholders filled from env; raises KeyError naming the missing ones."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if not env.get(name)})
    if missing:
        raise KeyError(", ".join(missing))
    return PLACEHOLDER.sub(lambda match: env[match.group(1)], template)


def main(argv):
    """Render argv[1] to stdout."""
    if len(argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as source:
        template = source.read()
    try:
        sys.stdout.write(render(template, os.environ))
    except KeyError as missing:
        print(f"{argv[1]}: no value for {missing.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
