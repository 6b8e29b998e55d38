"""A module's private (``_``) names are its own: no other module of the code base imports or reads them."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("finepay", "violations", "notices", "payments", "cases", "kiosk", "staff")


def module_name(path):
    """The dotted module name of a source file under ROOT."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    """{module name: path} of every module of the code base's packages."""
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def is_private(name):
    """A leading underscore marks a module's own name; dunders (__version__, __table__) are not private."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def absolute(node, current, is_package):
    """The module an ImportFrom node imports from, with relative imports resolved."""
    if not node.level:
        return node.module
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def crossings(current, path, known):
    """(line, text) of every use in ``path`` of another module's private name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    aliases = {}  # a local name bound to another module of the code base
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.name != current:
                    # "import a.b" binds a; "import a.b as c" binds c to a.b
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            source = absolute(node, current, is_package)
            for alias in node.names:
                if f"{source}.{alias.name}" in known and f"{source}.{alias.name}" != current:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                if source != current and source in known and is_private(alias.name):
                    found.append((node.lineno, f"from {source} import {alias.name}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                target = ".".join([aliases[value.id], *reversed(chain[1:])])
                if target in known and target != current:
                    found.append((node.lineno, f"{target}.{node.attr}"))
    return found


def test_no_module_uses_another_modules_private_names():
    known = modules()
    offences = [f"{path.relative_to(ROOT)}:{line}: {text}"
                for name, path in known.items() for line, text in crossings(name, path, known)]
    assert offences == []


def test_the_check_sees_a_private_import_and_a_private_attribute(tmp_path):
    package = tmp_path / "payments"
    package.mkdir()
    source = package / "reader.py"
    source.write_text("from payments.services import _lock_payment\nfrom payments import services\n"
                      "services._transition(None, 'x')\nservices.public()\n")
    known = {"payments": package / "__init__.py", "payments.services": package / "services.py",
             "payments.reader": source}
    found = crossings("payments.reader", source, known)
    assert [text for _line, text in found] == ["from payments.services import _lock_payment",
                                               "payments.services._transition"]
