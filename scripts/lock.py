"""Re-resolve the generated repo's requirements/*.txt for every framework (needs uv and the network).

The lock files live in the template under filename conditionals, one set per framework:
    {{cookiecutter.project_slug}}/requirements/{{ 'dev.txt' if cookiecutter.framework == 'sklearn' else '' }}
Run from the template root: python scripts/lock.py
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "{{cookiecutter.project_slug}}" / "requirements"
FRAMEWORKS = ("sklearn", "tensorflow")
LOCKS = ("dev.txt", "serve.txt")


def conditional_name(lock: str, framework: str) -> str:
    return "{{ '" + lock + "' if cookiecutter.framework == '" + framework + "' else '' }}"


def main() -> None:
    TARGET.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for framework in FRAMEWORKS:
            repo = Path(
                cookiecutter(
                    str(ROOT),
                    no_input=True,
                    output_dir=tmp,
                    extra_context={"framework": framework, "project_name": f"lock {framework}"},
                )
            )
            subprocess.run(["make", "lock"], cwd=repo, check=True)
            for lock in LOCKS:
                shutil.copyfile(repo / "requirements" / lock, TARGET / conditional_name(lock, framework))
                print(f"locked {framework} {lock}")


if __name__ == "__main__":
    main()
