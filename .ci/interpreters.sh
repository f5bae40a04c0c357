# Sourced by .ci/run and .ci/wheels: finds every supported CPython this machine has or can get,
# into the arrays `names` (3.11, 3.12.1, ...) and `pythons` (their interpreters), and `untested`
# (a line for each that cannot be had, and why); `make_venv I DIR` makes a virtual environment
# with pip for interpreter I in DIR. 3.11 is the machine's python3; 3.12.1 and
# 3.13.0 come from pyenv; 3.14 and 3.15 are Debian unstable's builds, through
# ../shared/tools/debian-python (exit status 3: they cannot be downloaded).

names=()
pythons=()
untested=()
debian=()  # 1 for Debian's builds, whose venvs debian-python makes (Debian leaves ensurepip out)
if python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    names+=(3.11)
    pythons+=("$(command -v python3)")
    debian+=(0)
else
    untested+=("3.11 (python3 is $(python3 --version 2>&1))")
fi
pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for version in 3.12.1 3.13.0; do
    if [ -x "$pyenv_root/versions/$version/bin/python3" ]; then
        names+=("$version")
        pythons+=("$pyenv_root/versions/$version/bin/python3")
        debian+=(0)
    else
        untested+=("$version (not in $pyenv_root/versions)")
    fi
done
debian_python=../shared/tools/debian-python
for version in 3.14 3.15; do
    if [ ! -x "$debian_python" ]; then
        untested+=("$version ($debian_python is missing)")
        continue
    fi
    set +e
    path=$("$debian_python" "$version" | tail -n1)
    status=$?
    set -e
    if [ "$status" -eq 0 ] && [ -x "$path" ]; then
        names+=("$version")
        pythons+=("$path")
        debian+=(1)
    elif [ "$status" -eq 3 ]; then
        untested+=("$version (debian-python could not download it)")
    else
        echo "error: $debian_python $version failed (exit status $status)" >&2
        return 1
    fi
done
for i in "${!names[@]}"; do
    echo "${names[$i]}: ${pythons[$i]} ($("${pythons[$i]}" --version 2>&1))"
done

make_venv() {
    local i=$1 dir=$2
    if [ "${debian[$i]}" = 1 ]; then
        "$debian_python" "${names[$i]}" --venv "$dir" >/dev/null
    else
        "${pythons[$i]}" -m venv "$dir"
    fi
}
