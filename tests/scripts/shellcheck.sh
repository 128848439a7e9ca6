#!/usr/bin/env bash
# Runs ShellCheck over every shell script in the repository, so that quoting and word-splitting
# mistakes (like install-deps.sh's former "$sudo -E apt-get") are caught before they run. A
# script is any file git knows of (tracked, or new and not ignored) that ends in .sh or whose
# first line is a sh/bash/dash/ksh shebang. It names the files it checks.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v shellcheck >/dev/null || { echo "shellcheck is missing: scripts/install-deps.sh installs it" >&2; exit 1; }
git rev-parse --is-inside-work-tree >/dev/null || { echo "not a git work tree: cannot list the scripts" >&2; exit 1; }

shebang='^#!.*[/ ](ba|da|k)?sh([[:space:]]|$)'
scripts=()
while IFS= read -r -d '' file; do
    [ -f "$file" ] || continue  # deleted in the work tree but not yet in git
    first=""
    IFS= read -r first <"$file" || true
    if [[ $file == *.sh || $first =~ $shebang ]]; then scripts+=("$file"); fi
done < <(git ls-files -z --cached --others --exclude-standard | sort -zu)
[ ${#scripts[@]} -gt 0 ] || { echo "no shell scripts found" >&2; exit 1; }

echo "shellcheck: ${scripts[*]}"
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts, no findings"
