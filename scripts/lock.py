"""Re-resolve the generated repo's requirements/*.txt for every framework (needs uv and the network).

The lock files live in the template under filename conditionals: dev.txt per framework and DVC remote (the
remote's DVC plugin), serve.txt per framework (the image needs no DVC), e.g. under requirements/:
    {{ 'dev.txt' if cookiecutter.framework ~ '-' ~ cookiecutter.dvc_remote == 'sklearn-s3' else '' }}
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
REMOTES = ("local", "s3", "gcs", "azure")


def conditional_name(lock: str, condition: str) -> str:
    return "{{ '" + lock + "' if " + condition + " else '' }}"


def main() -> None:
    TARGET.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for framework in FRAMEWORKS:
            for remote in REMOTES:
                answers = {"framework": framework, "dvc_remote": remote, "project_name": f"lock {framework} {remote}"}
                repo = Path(cookiecutter(str(ROOT), no_input=True, output_dir=tmp, extra_context=answers))
                subprocess.run(["make", "lock"], cwd=repo, check=True)
                condition = f"cookiecutter.framework ~ '-' ~ cookiecutter.dvc_remote == '{framework}-{remote}'"
                shutil.copyfile(repo / "requirements/dev.txt", TARGET / conditional_name("dev.txt", condition))
                if remote == "local":
                    condition = f"cookiecutter.framework == '{framework}'"
                    shutil.copyfile(repo / "requirements/serve.txt", TARGET / conditional_name("serve.txt", condition))
                print(f"locked {framework} {remote}")


if __name__ == "__main__":
    main()
