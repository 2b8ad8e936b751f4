"""Say what to do next. Nothing else: files are chosen by filename conditionals, not deleted here."""

print(
    "\nCreated {{ cookiecutter.project_slug }}. Next:\n"
    "  cd {{ cookiecutter.project_slug }}\n"
    "  make setup pipeline   # install the locked environment, then validate -> train -> evaluate -> gate\n"
    "  make test             # the repository's own tests\n"
)
