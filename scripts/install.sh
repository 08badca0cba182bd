#!/usr/bin/env bash
# Installs ds under PREFIX (default /usr/local): every tool a man page documents (man/ds-*.1|8)
# and task-supervisor into PREFIX/bin (ds-worker starts the task-supervisor beside its own
# executable), the man pages into PREFIX/share/man/man1 and man8, and each tool's bash and zsh
# completions (its --generate-completion-script) into PREFIX/share/bash-completion/completions/NAME
# and PREFIX/share/zsh/site-functions/_NAME.
#
# The binaries come from DS_BUILD_DIR when set (an existing build, such as .build/debug), else
# from the release build, made first (swift build -c release) when there is none. An existing
# release build is installed as it is: run 'swift build -c release' first to install a fresh one.
#
# Exit status: 0 installed; 64 usage (an empty, relative or unprintable PREFIX); 66 a binary or
# page missing from the build; 70 a tool did not print its completion script; 73 a file could not
# be written.
set -euo pipefail

usage() {
  echo "usage: scripts/install.sh [PREFIX]   PREFIX: an absolute path, default /usr/local; env DS_BUILD_DIR: an existing build folder to install from"
}
fail() { echo "install.sh: $2" >&2; exit "$1"; }

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) usage >&2; fail 64 "unknown option '$1'" ;;
esac
[ $# -le 1 ] || { usage >&2; fail 64 "one PREFIX at most, not $#"; }
prefix=${1-/usr/local}
case "$prefix" in
  "") fail 64 "PREFIX is empty: give an absolute path such as /usr/local or \$HOME/.local" ;;
  *[[:cntrl:]]*) fail 64 "PREFIX holds a control character (a newline, an escape, ...): give a plain absolute path" ;;
  /*) ;;
  *) fail 64 "PREFIX '$prefix' is relative: give an absolute path such as /usr/local or $PWD/$prefix" ;;
esac
while [ "${#prefix}" -gt 1 ] && [ "${prefix%/}" != "$prefix" ]; do prefix=${prefix%/}; done

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${DS_BUILD_DIR:-}" ]; then
  build=$DS_BUILD_DIR
  [ -d "$build" ] || fail 66 "DS_BUILD_DIR '$build' is not a folder: give the folder of a build, such as $root/.build/release"
elif [ -x "$root/.build/release/ds-master" ]; then
  build=$root/.build/release
else
  echo "install.sh: no release build yet: swift build -c release" >&2
  (cd "$root" && swift build -c release) || fail 70 "the release build failed"
  build=$(cd "$root" && swift build -c release --show-bin-path)
fi

# The tools: one per man page.
pages=()
tools=()
for page in "$root"/man/ds-*.[18]; do
  pages+=("$page")
  name=$(basename "$page")
  tools+=("${name%.*}")
done
[ ${#tools[@]} -gt 0 ] || fail 66 "no man page in $root/man: is this a ds checkout?"
for tool in "${tools[@]}" task-supervisor; do
  [ -f "$build/$tool" ] && [ -x "$build/$tool" ] || fail 66 "$build/$tool is missing: build it (swift build -c release) or set DS_BUILD_DIR to a complete build"
done

bin=$prefix/bin
man=$prefix/share/man
bash_dir=$prefix/share/bash-completion/completions
zsh_dir=$prefix/share/zsh/site-functions
install -d -m 755 "$bin" "$man/man1" "$man/man8" "$bash_dir" "$zsh_dir" || fail 73 "cannot make the folders under $prefix"

for tool in "${tools[@]}" task-supervisor; do
  install -m 755 "$build/$tool" "$bin/$tool" || fail 73 "cannot install $bin/$tool"
done
for page in "${pages[@]}"; do
  section=${page##*.}
  install -m 644 "$page" "$man/man$section/$(basename "$page")" || fail 73 "cannot install $(basename "$page") into $man/man$section"
done
for tool in "${tools[@]}"; do
  # Written beside, then moved: a failed tool leaves no empty completion behind.
  "$bin/$tool" --generate-completion-script bash > "$bash_dir/.$tool.new" || fail 70 "$tool did not print its bash completion"
  mv -f "$bash_dir/.$tool.new" "$bash_dir/$tool" || fail 73 "cannot install the bash completion of $tool into $bash_dir"
  "$bin/$tool" --generate-completion-script zsh > "$zsh_dir/._$tool.new" || fail 70 "$tool did not print its zsh completion"
  mv -f "$zsh_dir/._$tool.new" "$zsh_dir/_$tool" || fail 73 "cannot install the zsh completion of $tool into $zsh_dir"
  chmod 644 "$bash_dir/$tool" "$zsh_dir/_$tool" || fail 73 "cannot make the completions of $tool readable"
done

echo "installed ${#tools[@]} tools and task-supervisor into $bin, their man pages into $man, completions into $bash_dir and $zsh_dir"
