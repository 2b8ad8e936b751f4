"""Reject bad answers before anything is written: one ERROR line naming the field, the value and the rule.

Answers are read as JSON data (``tojson``), so nothing a user types is ever evaluated.
"""

import json
import keyword
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

CHOICES = {
    "framework": ("sklearn", "tensorflow"),
    "task": ("classification", "regression"),
    "python_version": ("3.11", "3.12"),
    "dvc_remote": ("local", "s3", "gcs", "azure"),
    "license": ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"),
}
# Import names the generated package must not shadow: its own dependencies and the usual test/tool names.
RESERVED_PACKAGES = {
    "dvc", "docker", "jsonschema", "keras", "numpy", "pandas", "pytest", "scipy", "skops", "sklearn",
    "starlette", "tensorflow", "uvicorn", "yaml", "orjson", "src", "test", "tests", "model", "schemas",
}
RESERVED_SLUGS = {"src", "test", "tests", "docs", "data", "deploy", "schemas", "model", "models", "artifacts"}
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
CODE_OWNER = re.compile(r"^@([A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
REMOTE_SCHEMES = {"s3": "s3://", "gcs": "gs://", "azure": "azure://"}
PRINTABLE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")


def problems(a: dict) -> list[str]:
    out = []

    def bad(field: str, rule: str) -> None:
        out.append(f"{field}: {a.get(field)!r}: {rule}")

    for field, allowed in CHOICES.items():
        if a.get(field) not in allowed:
            bad(field, f"must be one of {', '.join(allowed)}")
    for field, limit in (("project_name", 80), ("description", 300)):
        value = a.get(field, "")
        if not value.strip() or len(value) > limit or not PRINTABLE_LINE.match(value):
            bad(field, f"must be one non-empty line of at most {limit} characters")
    slug = a.get("project_slug", "")
    if not SLUG.match(slug) or len(slug) > 50:
        bad("project_slug", "must be lowercase letters, digits and single hyphens, start with a letter, max 50")
    elif slug in RESERVED_SLUGS:
        bad("project_slug", f"is reserved ({', '.join(sorted(RESERVED_SLUGS))})")
    package = a.get("package_name", "")
    if not PACKAGE.match(package) or not package.isidentifier() or keyword.iskeyword(package):
        bad("package_name", "must be a lowercase Python identifier (letters, digits, underscores), not a keyword")
    elif package in RESERVED_PACKAGES or package in sys.stdlib_module_names:
        bad("package_name", "would shadow the standard library or a dependency; pick another name")
    owner = a.get("github_owner", "")
    if not GITHUB_LOGIN.match(owner):
        bad("github_owner", "must be a GitHub login: letters, digits, single hyphens, at most 39 characters")
    code_owner = CODE_OWNER.match(a.get("code_owner", ""))
    if not code_owner:
        bad("code_owner", "must be @user or @org/team")
    elif code_owner.group(2) and code_owner.group(1).lower() != owner.lower():
        bad("code_owner", f"a team must belong to the repository's organisation @{owner}")
    url = a.get("dvc_remote_url", "")
    scheme = REMOTE_SCHEMES.get(a.get("dvc_remote"))
    if not url.strip() or not PRINTABLE_LINE.match(url) or any(c in url for c in " \"'\\"):
        bad("dvc_remote_url", "must be a URL or path without spaces, quotes or backslashes")
    elif scheme and not url.startswith(scheme):
        bad("dvc_remote_url", f"dvc_remote {a.get('dvc_remote')} needs a URL starting with {scheme}")
    elif not scheme and "://" in url:
        bad("dvc_remote_url", "dvc_remote local needs a folder path, not a URL")
    return out


def main() -> int:
    found = problems(ANSWERS)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
